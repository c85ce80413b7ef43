/**
 * The benchmark harness measures only stacks that answer correctly: every
 * peer and cloudsync-kit's real server must give the exact bytes of every
 * scenario, servers must stop by themselves, and the profile summary must
 * add up. (Needs `npm run build`; `npm test` runs it first.)
 */
import t from 'tap'

// The stacks run built dist/ files; their coverage (mapped back onto src/) would corrupt the suite's report.
process.env._TAPJS_PROCESSINFO_COVERAGE_ = '0'

interface Scenario { id: string; oursOnly?: boolean }
interface Stack { id: string; ours?: boolean }
interface Running { stack: Stack; pid: number; base: string; cookie?: string; child: { exitCode: number | null; signalCode: string | null; once(event: 'exit', fn: () => void): void }; stop(): Promise<void> }

// The harness is plain JavaScript without type declarations: load it untyped.
const load = (path: string): Promise<any> => import(path)
const { STACKS, startStack, login } = await load('../bench/stacks.js')
const { SCENARIOS, appliesTo, check } = await load('../bench/scenarios.js')
const { summarizeProfile } = await load('../bench/cpuprofile.js')

for (const id of ['bare', 'express', 'connect', 'fastify', 'cloudsync']) {
  t.test(`${id} answers every scenario with the expected bytes`, async (t) => {
    const stack = (STACKS as Stack[]).find((s) => s.id === id)!
    const server: Running = await startStack(stack, { lifetimeMs: 60_000 })
    t.teardown(() => server.stop())
    if (stack.ours === true) server.cookie = await login(server.base)
    for (const scenario of SCENARIOS as Scenario[]) {
      if (!appliesTo(scenario, stack)) continue
      t.equal(await check(server, scenario), undefined, `scenario ${scenario.id}`)
    }
  })
}

t.test('cloudsync-kit with the Basic cache off still answers correctly', async (t) => {
  const stack = (STACKS as Stack[]).find((s) => s.id === 'cloudsync-nocache')!
  const server: Running = await startStack(stack, { lifetimeMs: 60_000 })
  t.teardown(() => server.stop())
  t.equal(await check(server, (SCENARIOS as Scenario[]).find((s) => s.id === 'a')), undefined)
})

t.test('a check reports a wrong answer', async (t) => {
  const stack = (STACKS as Stack[]).find((s) => s.id === 'bare')!
  const server: Running = await startStack(stack, { lifetimeMs: 60_000 })
  t.teardown(() => server.stop())
  // Scenario b needs a session cookie: the bare peer has none and answers 401.
  const b = (SCENARIOS as Scenario[]).find((s) => s.id === 'b')!
  t.match(await check({ ...server, cookie: 'cloudsync.sid=x' }, b), /expected 200 .*got 401/)
})

t.test('a server stops by itself when its lifetime is over', async (t) => {
  const stack = (STACKS as Stack[]).find((s) => s.id === 'fastify')!
  const server: Running = await startStack(stack, { lifetimeMs: 500 })
  t.teardown(() => server.stop())
  await new Promise<void>((resolve) => {
    if (server.child.exitCode !== null || server.child.signalCode !== null) resolve()
    else server.child.once('exit', () => resolve())
  })
  t.pass('exited')
})

t.test('the profile summary adds up self and total time', async (t) => {
  // root → handler → (stringify | hash); samples: 2 × stringify (10 µs each), 1 × handler, 1 × hash.
  const frame = (functionName: string, url = 'file:///app/x.js') => ({ functionName, url, lineNumber: 0, columnNumber: 0, scriptId: '1' })
  const profile = {
    nodes: [
      { id: 1, callFrame: frame('(root)', ''), children: [2] },
      { id: 2, callFrame: frame('handler'), children: [3, 4] },
      { id: 3, callFrame: frame('stringify') },
      { id: 4, callFrame: frame('hash') }
    ],
    samples: [3, 3, 2, 4],
    timeDeltas: [0, 10_000, 10_000, 5_000, 5_000]
  }
  const summary = summarizeProfile(profile, 10)
  t.equal(summary.totalMs, 30)
  t.same(summary.functions.map((f: { function: string; selfMs: number }) => [f.function.split(' ')[0], f.selfMs]), [['stringify', 20], ['handler', 5], ['hash', 5]])
  const handler = summary.inclusive.find((f: { function: string }) => f.function.startsWith('handler '))
  t.equal(handler.selfMs, 30, 'handler is on the stack of every sample')
})
