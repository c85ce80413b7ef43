import t from 'tap'
import { existsSync, unlinkSync } from 'node:fs'
import { createServer, get as httpGet } from 'node:http'
import type { AddressInfo } from 'node:net'
import { openSqliteBackend } from '../src/backend/sqlite/index.js'
import type { SqliteBackend } from '../src/backend/sqlite/index.js'
import { BackendError } from '../src/backend/types.js'
import type { NewTask } from '../src/backend/types.js'

function open(dir: string): SqliteBackend {
  const backend = openSqliteBackend({ dataDir: dir, sessionPurgeIntervalMs: 0 })
  t.teardown(() => backend.close())
  return backend
}

function code(c: string) {
  return { constructor: BackendError, code: c }
}

async function readAll(stream: NodeJS.ReadableStream | undefined): Promise<string | undefined> {
  if (stream === undefined) return undefined
  let text = ''
  for await (const chunk of stream) text += chunk.toString()
  return text
}

/** A backend with one extra set and two stores, and a task factory. */
async function fixture(dir: string) {
  const backend = open(dir)
  const set = await backend.createObjectSet({ name: 'Demo', type: 'pidPattern', data: 'demo:*' })
  const src = await backend.createObjectStore({ name: 'Source', type: 'filesystem', data: '{"path":"/srv/a"}' })
  const dst = await backend.createObjectStore({ name: 'Dest', type: 'filesystem', data: '{"path":"/srv/b"}' })
  const task = (name: string, over: Partial<NewTask> = {}) => backend.createTask({
    name, type: 'list', state: 'Idle', data: `{"setUri":"objectSets/${set.id}","storeUri":"objectStores/${src.id}"}`,
    dependencies: { setIds: [set.id], storeIds: [src.id] }, ...over
  })
  return { backend, set, src, dst, task }
}

t.test('object sets: CRUD, unique names, ids never reused', async (t) => {
  const backend = open(t.testdir())
  const a = await backend.createObjectSet({ name: 'A', type: 'pidList', data: 'demo:1\ndemo:2' })
  t.same(a, { id: 2, name: 'A', type: 'pidList', data: 'demo:1\ndemo:2' })
  await t.rejects(backend.createObjectSet({ name: 'A', type: 'pidPattern', data: '*' }), code('name_taken'))
  await t.rejects(backend.createObjectSet({ name: 'All Objects', type: 'pidPattern', data: '*' }), code('name_taken'))
  const b = await backend.createObjectSet({ name: 'a', type: 'pidPattern', data: 'x:*' })
  t.equal(b.id, 3, 'case-sensitive names; the failed inserts used no id')
  t.same(await backend.updateObjectSet(a.id, { data: 'demo:3' }), { ...a, data: 'demo:3' })
  t.same(await backend.updateObjectSet(a.id, { name: 'A2', type: 'pidPattern' }), { id: a.id, name: 'A2', type: 'pidPattern', data: 'demo:3' })
  await t.rejects(backend.updateObjectSet(a.id, { name: 'a' }), code('name_taken'))
  await t.rejects(backend.updateObjectSet(42, { name: 'z' }), code('not_found'))
  t.same((await backend.listObjectSets()).map((s) => s.id), [1, 2, 3])
  await backend.deleteObjectSet(b.id)
  await t.rejects(backend.deleteObjectSet(b.id), code('not_found'))
  const c = await backend.createObjectSet({ name: 'C', type: 'pidPattern', data: '*' })
  t.equal(c.id, 4)
  t.equal(await backend.getObjectSet(b.id), undefined)
  await t.rejects(backend.createObjectSet({ name: 'bad', type: 'pidPattern' } as never), TypeError)
})

t.test('object stores: create, list, unique names, delete', async (t) => {
  const backend = open(t.testdir())
  const s = await backend.createObjectStore({ name: 'S', type: 'fedora', data: '{"url":"http://h/fedora","username":"u","password":"p"}' })
  t.same(await backend.listObjectStores(), [s])
  await t.rejects(backend.createObjectStore({ name: 'S', type: 'filesystem', data: '{"path":"/x"}' }), code('name_taken'))
  await backend.deleteObjectStore(s.id)
  await t.rejects(backend.deleteObjectStore(s.id), code('not_found'))
  t.equal((await backend.createObjectStore({ name: 'S', type: 'filesystem', data: '{"path":"/x"}' })).id, 2)
})

t.test('sets and stores referenced by a task cannot be deleted, whatever its state', async (t) => {
  const { backend, set, src, dst, task } = await fixture(t.testdir())
  const copy = await backend.createTask({
    name: 'Copy', type: 'copy', state: 'Starting', data: '{}',
    dependencies: { setIds: [1], storeIds: [src.id, dst.id, src.id] }
  })
  t.same(await backend.getTaskDependencies(copy.id), { setIds: [1], storeIds: [src.id, dst.id] }, 'duplicates collapse')
  await t.rejects(backend.deleteObjectSet(1), code('in_use'))
  await t.rejects(backend.deleteObjectStore(dst.id), code('in_use'))
  const list = await task('List')
  await t.rejects(backend.deleteObjectSet(set.id), code('in_use'), 'an Idle task counts too')

  // Re-pointing the list task frees its old set.
  await backend.updateTask(list.id, { dependencies: { setIds: [1], storeIds: [src.id] } })
  await backend.deleteObjectSet(set.id)

  await backend.updateTask(copy.id, { state: 'Idle' })
  await backend.deleteTask(copy.id)
  await backend.deleteObjectStore(dst.id)
  await t.rejects(backend.deleteObjectStore(src.id), code('in_use'))
  await backend.deleteTask(list.id)
  await backend.deleteObjectStore(src.id)
  await backend.deleteObjectSet(1)
  t.same(await backend.listObjectSets(), [])
})

t.test('tasks: create, update, unique names, missing dependencies', async (t) => {
  const { backend, set, src, dst, task } = await fixture(t.testdir())
  const a = await task('A', { schedule: 'nightly' })
  t.same(a, { id: 1, name: 'A', type: 'list', state: 'Idle', schedule: 'nightly', data: `{"setUri":"objectSets/${set.id}","storeUri":"objectStores/${src.id}"}` })
  t.same(await backend.getTask(a.id), a)
  const b = await task('B', { state: 'Starting' })
  t.notOk('schedule' in b, 'absent schedule is omitted, not undefined')
  t.notOk('activeLogId' in b)
  await t.rejects(task('A'), code('name_taken'))
  await t.rejects(task('C', { dependencies: { setIds: [99], storeIds: [src.id] } }), code('not_found'))
  await t.rejects(task('C', { dependencies: { setIds: [set.id], storeIds: [src.id, 77] } }), code('not_found'))
  t.same((await backend.listTasks()).map((x) => x.name), ['A', 'B'], 'failed creates left nothing behind')
  t.equal((await task('C')).id, 3, 'and used no id')
  await t.rejects(task('D', { dependencies: { setIds: ['1'], storeIds: [] } as never }), TypeError)

  const updated = await backend.updateTask(a.id, { name: 'A2', type: 'copy', data: '{"x":1}', state: 'Starting', dependencies: { setIds: [1], storeIds: [src.id, dst.id] } })
  t.same(updated, { id: a.id, name: 'A2', type: 'copy', state: 'Starting', schedule: 'nightly', data: '{"x":1}' })
  t.same(await backend.getTask(a.id), updated)
  t.same(await backend.getTaskDependencies(a.id), { setIds: [1], storeIds: [src.id, dst.id] })
  await t.rejects(backend.updateTask(a.id, { name: 'B' }), code('name_taken'))
  await t.rejects(backend.updateTask(a.id, { name: 'Z', dependencies: { setIds: [123], storeIds: [] } }), code('not_found'))
  t.same(await backend.getTask(a.id), updated, 'a refused update changes nothing')
  t.same(await backend.getTaskDependencies(a.id), { setIds: [1], storeIds: [src.id, dst.id] })
  await t.rejects(backend.updateTask(999, { state: 'Idle' }), code('not_found'))
  t.same(await backend.updateTask(a.id, {}), updated, 'an empty change is a no-op')
})

t.test('updateTask with ifState is compare-and-set: exactly one racer wins', async (t) => {
  const dir = t.testdir()
  const { backend, task } = await fixture(dir)
  const x = await task('X', { state: 'Starting' })
  await backend.updateTask(x.id, { state: 'Running' }, 'Starting')
  await t.rejects(backend.updateTask(x.id, { state: 'Running' }, 'Starting'), code('state_changed'))
  t.equal((await backend.getTask(x.id))!.state, 'Running')

  // A client cancel and the manager finishing the run, both having seen Running.
  const results = await Promise.allSettled([
    backend.updateTask(x.id, { state: 'Canceling' }, 'Running'),
    backend.updateTask(x.id, { state: 'Idle', activeLogId: null }, 'Running')
  ])
  t.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
  t.match(results.find((r) => r.status === 'rejected'), { reason: code('state_changed') })

  // The same race through two connections to one file (two processes in production).
  const other = open(dir)
  await backend.updateTask(x.id, { state: 'Running' })
  const cross = await Promise.allSettled([
    backend.updateTask(x.id, { state: 'Pausing' }, 'Running'),
    other.updateTask(x.id, { state: 'Canceling' }, 'Running')
  ])
  t.equal(cross.filter((r) => r.status === 'fulfilled').length, 1)
  const final = (await other.getTask(x.id))!.state
  t.ok(final === 'Pausing' || final === 'Canceling')
  t.equal((await backend.getTask(x.id))!.state, final, 'both connections see the winner')
})

t.test('deleting tasks: not found, active, in use by logs', async (t) => {
  const { backend, task } = await fixture(t.testdir())
  const x = await task('X', { state: 'Starting' })
  await t.rejects(backend.deleteTask(x.id), code('active'))
  await backend.updateTask(x.id, { state: 'Idle' })
  const log = await backend.createTaskLog(x.id, 1000)
  await t.rejects(backend.deleteTask(x.id), code('in_use'))
  await backend.finishTaskLog(log.id, 'Succeeded', 2000)
  await t.rejects(backend.deleteTask(x.id), code('in_use'), 'finished logs count too')
  await backend.deleteTaskLog(log.id)
  await backend.deleteTask(x.id)
  t.equal(await backend.getTask(x.id), undefined)
  t.equal(await backend.getTaskDependencies(x.id), undefined)
  await t.rejects(backend.deleteTask(x.id), code('not_found'))
  t.equal((await task('Y')).id, x.id + 1, 'task ids are never reused')
})

t.test('task logs: creation, active log, finish, ordering', async (t) => {
  const { backend, task } = await fixture(t.testdir())
  const x = await task('X', { state: 'Starting' })
  const y = await task('Y')
  await t.rejects(backend.createTaskLog(999, 1), code('not_found'))
  const l1 = await backend.createTaskLog(x.id, 1000)
  t.same(l1, { id: 1, taskId: x.id, resultType: 'Incomplete', startDate: 1000 })
  t.equal(await readAll(await backend.readTaskLogContent(l1.id)), '', 'a new log has empty content')
  t.same(await backend.updateTask(x.id, { state: 'Running', activeLogId: l1.id }, 'Starting'), { ...x, state: 'Running', activeLogId: l1.id })
  const l2 = await backend.createTaskLog(y.id, 1100)
  await t.rejects(backend.updateTask(x.id, { activeLogId: l2.id }), code('not_found'), 'a log of another task cannot be the active log')
  await t.rejects(backend.updateTask(x.id, { activeLogId: 555 }), code('not_found'))

  // Deleting the active log of a non-Idle task is refused [D31].
  await t.rejects(backend.deleteTaskLog(l1.id), code('active'))

  // Ordering: unfinished first, then finishDate desc, ties by id desc.
  const l3 = await backend.createTaskLog(y.id, 1200)
  const l4 = await backend.createTaskLog(y.id, 1300)
  const l5 = await backend.createTaskLog(y.id, 1400)
  await backend.finishTaskLog(l2.id, 'Succeeded', 5000)
  await backend.finishTaskLog(l3.id, 'Failed', 9000)
  await backend.finishTaskLog(l4.id, 'Canceled', 5000)
  t.same((await backend.listTaskLogs()).map((l) => l.id), [l5.id, l1.id, l3.id, l4.id, l2.id])
  t.same(await backend.getTaskLog(l3.id), { id: l3.id, taskId: y.id, resultType: 'Failed', startDate: 1200, finishDate: 9000 })
  await t.rejects(backend.finishTaskLog(999, 'Succeeded', 1), code('not_found'))
  await t.rejects(backend.finishTaskLog(l5.id, 'Incomplete' as never, 1), TypeError)

  // Once the task is Idle (active log cleared) the log may go.
  await backend.updateTask(x.id, { state: 'Idle', activeLogId: null }, 'Running')
  t.notOk('activeLogId' in (await backend.getTask(x.id))!)
  await backend.finishTaskLog(l1.id, 'Succeeded', 6000)
  await backend.deleteTaskLog(l1.id)
  t.equal(await backend.getTaskLog(l1.id), undefined)
  await t.rejects(backend.deleteTaskLog(l1.id), code('not_found'))
  const l6 = await backend.createTaskLog(x.id, 7000)
  t.equal(l6.id, l5.id + 1, 'log ids are never reused')
})

t.test('a stale active log id on an Idle task does not block deleting that log', async (t) => {
  const { backend, task } = await fixture(t.testdir())
  const x = await task('X')
  const log = await backend.createTaskLog(x.id, 1)
  await backend.updateTask(x.id, { activeLogId: log.id })
  await backend.deleteTaskLog(log.id)
  t.notOk('activeLogId' in (await backend.getTask(x.id))!, 'the reference was cleared with the log')
})

t.test('task log content: append, read while growing, delete', async (t) => {
  const { backend, task } = await fixture(t.testdir())
  const x = await task('X')
  const log = await backend.createTaskLog(x.id, Date.now())
  const writer = await backend.openTaskLogContent(log.id)
  await writer.write('# Started at 2024-01-01T00:00:00.000Z\n')
  t.equal(await readAll(await backend.readTaskLogContent(log.id)), '# Started at 2024-01-01T00:00:00.000Z\n', 'readable as soon as written')
  await writer.write('Copying demo:1..')
  await writer.write('OK (new in destination)\n')
  t.equal(await readAll(await backend.readTaskLogContent(log.id)), '# Started at 2024-01-01T00:00:00.000Z\nCopying demo:1..OK (new in destination)\n')

  // Writes issued without awaiting land in call order.
  const lines = Array.from({ length: 200 }, (_, i) => `demo:${i} ✓\n`)
  await Promise.all(lines.map((line) => writer.write(line)))
  const text = await readAll(await backend.readTaskLogContent(log.id))
  t.ok(text!.endsWith(lines.join('')), 'every line, in order, UTF-8 intact')
  await t.rejects(writer.write(42 as never), TypeError)
  await writer.close()
  await writer.close()
  await t.rejects(writer.write('late\n'), /closed/)

  // A second writer (e.g. start-up recovery) appends after the existing content.
  const again = await backend.openTaskLogContent(log.id)
  await again.write('# Finished (canceled) at 2024-01-01T00:00:01.000Z\n')
  await again.close()
  t.match(await readAll(await backend.readTaskLogContent(log.id)), /demo:199 ✓\n# Finished \(canceled\) at .*\n$/)

  const path = backend.taskLogContentPath(log.id)
  t.ok(existsSync(path))
  t.match(path, /tasklogs[/\\]tasklog-1\.txt$/, 'spec §5.9 file naming')
  await backend.deleteTaskLog(log.id)
  t.notOk(existsSync(path), 'deleting the log removes its content')
  t.equal(await backend.readTaskLogContent(log.id), undefined)
  await t.rejects(backend.openTaskLogContent(log.id), code('not_found'))
  t.equal(await backend.readTaskLogContent(0), undefined)
})

t.test('missing content reads as undefined; delete tolerates it', async (t) => {
  const { backend, task } = await fixture(t.testdir())
  const log = await backend.createTaskLog((await task('X')).id, 1)
  unlinkSync(backend.taskLogContentPath(log.id))
  t.equal(await backend.readTaskLogContent(log.id), undefined)
  await backend.deleteTaskLog(log.id)
  t.equal(await backend.getTaskLog(log.id), undefined)
})

t.test('content served over HTTP shows lines written so far', async (t) => {
  const { backend, task } = await fixture(t.testdir())
  const log = await backend.createTaskLog((await task('X')).id, Date.now())
  const writer = await backend.openTaskLogContent(log.id)
  t.teardown(() => writer.close())
  const server = createServer((req, res) => {
    void backend.readTaskLogContent(log.id).then((stream) => {
      if (stream === undefined) {
        res.statusCode = 404
        res.end()
        return
      }
      res.setHeader('Content-Type', 'text/plain; charset=UTF-8')
      stream.pipe(res)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const { port } = server.address() as AddressInfo
  const fetchText = () => new Promise<string>((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path: '/' }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve(body))
    }).on('error', reject)
  })
  await writer.write('# Started at 2024-01-01T00:00:00.000Z\n')
  t.equal(await fetchText(), '# Started at 2024-01-01T00:00:00.000Z\n')
  await writer.write('demo:1\n')
  t.equal(await fetchText(), '# Started at 2024-01-01T00:00:00.000Z\ndemo:1\n')
})
