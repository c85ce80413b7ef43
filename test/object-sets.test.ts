import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { filesystemConnector } from '../src/backend/stores/filesystem.js'
import { enumerateObjectSet, parseObjectSet } from '../src/backend/tasks/object-sets.js'
import { errorLine, finishedLine, LogContent } from '../src/backend/tasks/log-format.js'
import { writeFixtureStore } from './fixtures/foxml-fixture.js'

t.test('parseObjectSet', async (t) => {
  t.same(parseObjectSet({ id: 1, name: 'All', type: 'pidPattern', data: ' demo:* ' }), { type: 'pidPattern', pattern: 'demo:*' })
  t.same(parseObjectSet({ id: 2, name: 'L', type: 'pidList', data: 'a:1\n b:2 a:1' }), { type: 'pidList', pids: ['a:1', 'b:2', 'a:1'] })
  t.same(parseObjectSet({ id: 3, name: 'Q', type: 'query', data: '{"queryType":"iTQL","queryText":"select $o"}' }), {
    type: 'query',
    queryType: 'iTQL',
    queryText: 'select $o',
  })
  t.throws(() => parseObjectSet({ id: 3, name: 'Q', type: 'query', data: 'nope' }), /does not hold a valid query/)
  t.throws(() => parseObjectSet({ id: 3, name: 'Q', type: 'query', data: '{"queryType":"sql","queryText":"x"}' }), /valid query/)
  t.throws(() => parseObjectSet({ id: 3, name: 'Q', type: 'query', data: '{"queryType":"SPARQL","queryText":" "}' }), /valid query/)
  t.throws(() => parseObjectSet({ id: 4, name: 'X', type: 'other' as never, data: '' }), /unknown type "other"/)
})

t.test('enumerateObjectSet streams a stored set from a store', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sets-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFixtureStore(dir, { count: 3, versions: 1, largeBytes: 10 })
  const store = filesystemConnector({ path: dir })
  const out: string[] = []
  for await (const pid of enumerateObjectSet(store, { id: 1, name: 'All', type: 'pidPattern', data: '*' }, new AbortController().signal)) out.push(pid)
  t.same(out.sort(), ['demo:1', 'demo:2', 'demo:3'])
  const q = enumerateObjectSet(store, { id: 2, name: 'Q', type: 'query', data: '{"queryType":"SPARQL","queryText":"x"}' }, new AbortController().signal)
  await t.rejects(q.next(), /Query object sets can only be evaluated by a Fedora object store/)
})

t.test('log lines and line discipline', async (t) => {
  t.equal(errorLine('first\nsecond\r\n# not a heading'), 'ERROR: first\n  second\n  # not a heading\n', 'detail lines indented')
  t.equal(errorLine('  '), 'ERROR: Unknown error\n')
  t.equal(finishedLine('failed', new Date(Date.UTC(2011, 10, 2, 14, 15, 30, 5))), '# Finished (failed) at 2011-11-02T14:15:30.005Z\n')
  const written: string[] = []
  const log = new LogContent({ write: async (s) => void written.push(s), close: async () => undefined })
  await log.open('Copying demo:1..')
  t.ok(log.isLineOpen)
  await log.line('# Paused at x', { ownLine: true })
  await log.open('Copying demo:2..')
  await log.line('ERROR: boom')
  t.notOk(log.isLineOpen)
  t.equal(written.join(''), 'Copying demo:1..\n# Paused at x\nCopying demo:2..ERROR: boom\n')
})

t.test('the start of a line is held back briefly, complete lines are written at once', async (t) => {
  const written: string[] = []
  let closed = false
  const log = new LogContent({ write: async (s) => void written.push(s), close: async () => void (closed = true) })
  await log.line('demo:1')
  t.same(written, ['demo:1\n'], 'a complete line goes out at once')
  await log.open('Copying demo:2..')
  t.same(written, ['demo:1\n'], 'the start of a line waits for its end')
  await log.line('OK (new in destination)')
  t.same(written.at(-1), 'Copying demo:2..OK (new in destination)\n', 'start and end in one write')

  await log.open('Copying demo:3..')
  const waitedFrom = Date.now()
  while (written.length < 3) await new Promise((r) => setTimeout(r, 5))
  t.equal(written.at(-1), 'Copying demo:3..', 'a slow object shows its start on its own')
  t.ok(Date.now() - waitedFrom < 1000, 'well under a second')
  t.ok(log.isLineOpen)
  await log.line('REPLACED (exists in destination)')
  t.equal(written.at(-1), 'REPLACED (exists in destination)\n')

  await log.append('Copying demo:4..OK (new in destination)\nCopying demo:5..')
  t.equal(written.at(-1), 'Copying demo:4..OK (new in destination)\n', 'append: whole lines at once')
  t.ok(log.isLineOpen, 'append: the rest is an open line')
  await log.close()
  t.equal(written.at(-1), 'Copying demo:5..', 'close writes what is held')
  t.ok(closed)
  t.equal(written.join(''), 'demo:1\nCopying demo:2..OK (new in destination)\nCopying demo:3..REPLACED (exists in destination)\nCopying demo:4..OK (new in destination)\nCopying demo:5..')
})

t.test('a failed held write surfaces at the next write', async (t) => {
  let fail = true
  let attempts = 0
  const written: string[] = []
  const log = new LogContent({
    write: async (s) => {
      attempts++
      if (fail) throw new Error('disk full')
      written.push(s)
    },
    close: async () => undefined,
  })
  await log.open('Copying demo:1..')
  while (attempts === 0) await new Promise((r) => setTimeout(r, 5))
  fail = false
  await t.rejects(log.line('OK (new in destination)'), /disk full/)
})
