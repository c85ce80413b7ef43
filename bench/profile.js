/**
 * Profile cloudsync-kit under load:
 *
 *   npm run build && node bench/profile.js [scenario=a] [seconds=10]
 *
 * Starts the real server (seeded like in the benchmark) with `--cpu-prof`,
 * loads it with one scenario from another process, stops it so V8 writes
 * the profile, and prints self time by function and by file
 * (bench/cpuprofile.js). The profile is kept (in BENCH_PROFILE_DIR, default
 * <tmp>/cloudsync-profiles) for Chrome DevTools or speedscope.
 *
 * Environment: BENCH_PROFILE_STACK (default cloudsync), BENCH_PROFILE_TOP
 * (rows, default 40), BENCH_PROFILE_INTERVAL_US (sampling, default 250).
 */
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { BENCH_DIR, ROOT, STACKS, login, startStack } from './stacks.js'
import { SCENARIOS } from './scenarios.js'
import { formatSummary, summarizeProfile } from './cpuprofile.js'

const scenario = SCENARIOS.find((s) => s.id === (process.argv[2] ?? 'a'))
const seconds = Number(process.argv[3] ?? 10)
if (scenario === undefined || !Number.isInteger(seconds) || seconds < 1 || seconds > 120) {
  console.error(`usage: node bench/profile.js [${SCENARIOS.map((s) => s.id).join('|')}] [seconds 1-120]`)
  process.exit(2)
}
const stackId = process.env.BENCH_PROFILE_STACK ?? 'cloudsync'
const stack = STACKS.find((s) => s.id === stackId)
if (stack === undefined) throw new Error(`unknown stack ${stackId}`)
const dir = path.resolve(process.env.BENCH_PROFILE_DIR ?? path.join(tmpdir(), 'cloudsync-profiles'))
mkdirSync(dir, { recursive: true })
const started = Date.now()

const server = await startStack(stack, { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-interval=${process.env.BENCH_PROFILE_INTERVAL_US ?? 250}`], lifetimeMs: (seconds + 120) * 1000 })
try {
  if (stack.ours) server.cookie = await login(server.base)
  const spec = {
    url: server.base + scenario.path,
    method: scenario.method,
    headers: scenario.headers(server),
    ...(scenario.body === undefined ? {} : { body: scenario.body }),
    warmupSeconds: 1,
    durationSeconds: seconds,
    pid: server.pid,
    expectStatus: scenario.expect('').status
  }
  const out = await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(BENCH_DIR, 'load.js'), JSON.stringify(spec)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
    let text = ''
    child.stdout.setEncoding('utf8').on('data', (c) => { text += c })
    child.once('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`load.js exited ${code}`))))
  })
  console.log(`load: ${out.trim()}`)
} finally {
  await server.stop()
}
const profiles = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(dir, f))
  .filter((f) => statSync(f).mtimeMs >= started).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)
if (profiles.length === 0) throw new Error('no profile was written (did the server exit cleanly?)')
console.log(`profile: ${profiles[0]}\n`)
console.log(formatSummary(summarizeProfile(JSON.parse(readFileSync(profiles[0], 'utf8')), Number(process.env.BENCH_PROFILE_TOP ?? 40))))
