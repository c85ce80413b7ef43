import t from 'tap'
import { compilePidPattern, isValidPid, matchPidPattern, tokenizePidList } from '../src/backend/stores/pid.js'

t.test('PID syntax check (spec §5.6)', async (t) => {
  for (const pid of ['demo:1', 'a:b', 'changeme:100', 'my.ns:obj-1_x', 'ns:é']) t.ok(isValidPid(pid), pid)
  for (const pid of ['', 'demo', ':1', 'demo:', 'a:b:c', 'demo:1+DC+DC.0', 'demo/x:1', 'demo :1', 'demo: 1']) {
    t.notOk(isValidPid(pid), JSON.stringify(pid))
  }
})

t.test('glob patterns [D23]', async (t) => {
  t.ok(matchPidPattern('*', 'anything at all'), 'bare * matches everything')
  t.ok(matchPidPattern('demo:*', 'demo:1'))
  t.ok(matchPidPattern('demo:*', 'demo:'), '* matches the empty run')
  t.notOk(matchPidPattern('demo:*', 'other:1'))
  t.ok(matchPidPattern('*:1', 'demo:1'))
  t.notOk(matchPidPattern('*:1', 'demo:12'), 'must cover the whole PID')
  t.ok(matchPidPattern('d*o:*1', 'demo:21'))
  t.ok(matchPidPattern('a*b*c', 'abc'))
  t.ok(matchPidPattern('a*b*c', 'axxbyybzc'))
  t.notOk(matchPidPattern('a*b*c', 'acb'))
  t.notOk(matchPidPattern('ab*ba', 'aba'), 'head and tail may not overlap')
  t.ok(matchPidPattern('demo:1', 'demo:1'), 'no * means equality')
  t.notOk(matchPidPattern('Demo:*', 'demo:1'), 'case-sensitive')
  t.notOk(matchPidPattern('demo.*', 'demoX1'), 'regex metacharacters are literal')
  t.ok(matchPidPattern('demo.*', 'demo.1'))
  t.ok(matchPidPattern('[a]+:*', '[a]+:x'), 'brackets and + are literal')
  t.ok(matchPidPattern('**', ''))
})

t.test('a compiled pattern is reusable and fast on hostile input', async (t) => {
  const m = compilePidPattern('*a*a*a*a*a*a*a*b')
  const pid = 'a'.repeat(5000)
  const started = process.hrtime.bigint()
  t.notOk(m(pid))
  t.ok(Number(process.hrtime.bigint() - started) / 1e6 < 50, 'linear time, no backtracking blow-up')
  t.ok(m('xaaaaaaab'))
})

t.test('pidList tokenizing', async (t) => {
  t.same(tokenizePidList('demo:1\ndemo:2'), ['demo:1', 'demo:2'])
  t.same(tokenizePidList('  demo:1 \r\n\t demo:2   demo:1\n'), ['demo:1', 'demo:2', 'demo:1'], 'order and duplicates kept')
  t.same(tokenizePidList(''), [])
  t.same(tokenizePidList(' \n\t '), [])
})
