/**
 * The task engine driven through the real SQLite backend and real
 * filesystem stores. Where a test must act "while the run is at line N", the
 * backend's log writer is gated: the write of that line waits until the test
 * releases it (the backend itself is the real one).
 */
import t from 'tap'
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { text as streamText } from 'node:stream/consumers'
import { openSqliteBackend } from '../src/backend/sqlite/index.js'
import type { Backend, TaskLogRecord, TaskRecord, TaskState } from '../src/backend/types.js'
import { contentPath } from '../src/backend/stores/filesystem-layout.js'
import { filesystemConnector } from '../src/backend/stores/filesystem.js'
import { TaskManager } from '../src/backend/tasks/manager.js'
import type { TaskManagerOptions } from '../src/backend/tasks/manager.js'
import { parseTaskData } from '../src/backend/tasks/task-data.js'
import { writeFixtureStore } from './fixtures/foxml-fixture.js'
import type { FixtureObject } from './fixtures/foxml-fixture.js'
import { STARTED as started, PAUSED as paused, RESUMED as resumed, finished, until as waitFor } from './helpers/task-log.js'

type Teardown = { teardown(fn: () => unknown): void }

interface Hooks {
  beforeWrite?: (text: string) => Promise<void> | void
  createTaskLog?: (taskId: number, startDate: number, create: () => Promise<TaskLogRecord>) => Promise<TaskLogRecord>
}

/** The real backend, with optional hooks on log writes and log creation. */
function instrument(backend: Backend, hooks: Hooks): Backend {
  return new Proxy(backend, {
    get(target, prop) {
      if (prop === 'openTaskLogContent') {
        return async (id: number) => {
          const writer = await target.openTaskLogContent(id)
          return {
            write: async (text: string) => {
              await hooks.beforeWrite?.(text)
              return writer.write(text)
            },
            close: () => writer.close(),
          }
        }
      }
      if (prop === 'createTaskLog' && hooks.createTaskLog !== undefined) {
        return (taskId: number, startDate: number) => hooks.createTaskLog!(taskId, startDate, () => target.createTaskLog(taskId, startDate))
      }
      const value = Reflect.get(target, prop, target) as unknown
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
    },
  })
}

/** Blocks the first log write that matches until released. */
function gate(match: (text: string) => boolean) {
  let reachedResolve!: () => void
  let release!: () => void
  const reached = new Promise<void>((r) => (reachedResolve = r))
  const opened = new Promise<void>((r) => (release = r))
  return {
    reached,
    release: () => release(),
    hook: async (text: string) => {
      if (match(text)) {
        reachedResolve()
        await opened
      }
    },
  }
}

interface Env {
  dir: string
  backend: Backend
  raw: Backend
  manager: TaskManager
  system: string[]
  storeId(path: string, name?: string): Promise<number>
  setId(type: 'pidPattern' | 'pidList' | 'query', data: string): Promise<number>
  task(type: 'list' | 'copy', data: Record<string, unknown>, state?: 'Idle' | 'Starting'): Promise<TaskRecord>
  waitState(id: number, state: TaskState): Promise<TaskRecord>
  logsOf(taskId: number): Promise<TaskLogRecord[]>
  content(logId: number): Promise<string>
  /** Start the task, wait until it is Idle again; its single newest log and content. */
  run(task: TaskRecord): Promise<{ log: TaskLogRecord; content: string; lines: string[] }>
}

async function setup(t: Teardown, options: { hooks?: Hooks; manager?: TaskManagerOptions; start?: boolean } = {}): Promise<Env> {
  const dir = await mkdtemp(join(tmpdir(), 'task-engine-'))
  const raw = openSqliteBackend({ dataDir: join(dir, 'data') })
  const backend = instrument(raw, options.hooks ?? {})
  const system: string[] = []
  // In-process copies by default (gated log writes must hold the loop); test/api-task-runs.test.ts covers both modes.
  const manager = new TaskManager(backend, { intervalMs: 50, log: (m) => system.push(m), workerThreads: false, ...options.manager })
  t.teardown(async () => {
    await manager.shutdown()
    await raw.close()
    await rm(dir, { recursive: true, force: true })
  })
  if (options.start !== false) await manager.start()
  let names = 0
  const env: Env = {
    dir,
    backend,
    raw,
    manager,
    system,
    async storeId(path, name = `store ${++names}`) {
      await mkdir(path, { recursive: true })
      return (await raw.createObjectStore({ name, type: 'filesystem', data: JSON.stringify({ path }) })).id
    },
    async setId(type, data) {
      return (await raw.createObjectSet({ name: `set ${++names}`, type, data })).id
    },
    async task(type, data, state = 'Idle') {
      const text = JSON.stringify(data)
      const parsed = parseTaskData(type, text)
      const dependencies = parsed.ok ? parsed.dependencies : { setIds: [], storeIds: [] }
      const task = await raw.createTask({ name: `task ${++names}`, type, state, data: text, dependencies })
      if (state === 'Starting') manager.wake()
      return task
    },
    waitState(id, state) {
      return waitFor(`task ${id} ${state}`, async () => {
        const task = await raw.getTask(id)
        return task?.state === state ? task : undefined
      })
    },
    async logsOf(taskId) {
      return (await raw.listTaskLogs()).filter((l) => l.taskId === taskId)
    },
    async content(logId) {
      const stream = await raw.readTaskLogContent(logId)
      return stream === undefined ? '' : streamText(stream as AsyncIterable<Buffer>)
    },
    async run(task) {
      await raw.updateTask(task.id, { state: 'Starting' }, 'Idle')
      manager.wake()
      const done = await waitFor(`run of task ${task.id}`, async () => {
        const now = await raw.getTask(task.id)
        const logs = await env.logsOf(task.id)
        const newest = logs.sort((a, b) => b.id - a.id)[0]
        return now?.state === 'Idle' && newest !== undefined && newest.resultType !== 'Incomplete' ? newest : undefined
      })
      const content = await env.content(done.id)
      return { log: done, content, lines: content.split('\n').slice(0, -1) }
    },
  }
  return env
}


function copyData(setId: number, query: number, source: number, dest: number, flags: Partial<Record<'overwrite' | 'includeManaged' | 'copyExternal' | 'copyRedirect', string | boolean>> = {}) {
  return {
    setUri: `http://localhost/api/rest/objectSets/${setId}`,
    queryStoreUri: `objectStores/${query}.json`,
    sourceStoreUri: `objectStores/${source}`,
    destStoreUri: `/api/rest/objectStores/${dest}.xml`,
    overwrite: 'false',
    includeManaged: 'true',
    copyExternal: 'false',
    copyRedirect: 'false',
    ...flags,
  }
}

t.test('options are checked', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'task-engine-'))
  const backend = openSqliteBackend({ dataDir: dir })
  t.teardown(async () => {
    await backend.close()
    await rm(dir, { recursive: true, force: true })
  })
  t.throws(() => new TaskManager(backend, { intervalMs: 0 }), /"intervalMs"/)
  t.throws(() => new TaskManager(backend, { intervalMs: Number.NaN }), TypeError)
  t.throws(() => new TaskManager(backend, { log: 'x' as never }), /"log"/)
  t.throws(() => new TaskManager(backend, { runners: { list: 1 as never } }), /"runners.list"/)
  t.throws(() => new TaskManager(backend, { durable: 'yes' as never }), /"durable"/)
  t.throws(() => new TaskManager(backend, { workerThreads: 1 as never }), /"workerThreads"/)
  for (const copyThreads of [0, 1.5, -1, '2' as never]) t.throws(() => new TaskManager(backend, { copyThreads }), /"copyThreads"/)
  t.doesNotThrow(() => new TaskManager(backend, { copyThreads: 3 }))
  t.throws(() => new TaskManager(backend, { storeOptions: null as never }), /"storeOptions"/)
  t.throws(() => new TaskManager({} as never), /Backend/)
})

t.test('list run: lifecycle, log lines and records', async (t) => {
  const g = gate((text) => text === 'demo:1\n' || text === 'demo:2\n')
  const env = await setup(t, { hooks: { beforeWrite: g.hook } })
  const storeDir = join(env.dir, 'store')
  await writeFixtureStore(storeDir, { count: 3, versions: 1, largeBytes: 10 })
  await writeFixtureStore(storeDir, { count: 1, namespace: 'other', versions: 1, largeBytes: 10 })
  const store = await env.storeId(storeDir)
  const set = await env.setId('pidPattern', 'demo:*')
  const task = await env.task('list', { setUri: `objectSets/${set}`, storeUri: `objectStores/${store}` }, 'Starting')

  await g.reached
  // While the run is active: Running, active log recorded, content readable.
  const running = (await env.raw.getTask(task.id))!
  t.equal(running.state, 'Running')
  const [log] = await env.logsOf(task.id)
  t.equal(running.activeLogId, log!.id, 'the active log is recorded')
  t.equal(log!.resultType, 'Incomplete')
  t.equal(log!.finishDate, undefined)
  t.match((await env.content(log!.id)).split('\n')[0], started, 'content readable while running')
  g.release()

  await env.waitState(task.id, 'Idle')
  const idle = (await env.raw.getTask(task.id))!
  t.equal(idle.activeLogId, undefined, 'active log cleared')
  const done = (await env.raw.getTaskLog(log!.id))!
  t.equal(done.resultType, 'Succeeded')
  t.ok(done.finishDate! >= done.startDate)
  const lines = (await env.content(log!.id)).split('\n')
  t.equal(lines.pop(), '', 'ends with a line end')
  t.match(lines[0], started)
  t.equal(new Date(lines[0]!.slice('# Started at '.length)).getTime(), done.startDate, '# Started time = startDate')
  t.same(lines.slice(1, -1).sort(), ['demo:1', 'demo:2', 'demo:3'], 'one line per matching PID')
  t.match(lines.at(-1), finished('succeeded'))
  t.equal(new Date(lines.at(-1)!.replace(/^.* at /, '')).getTime(), done.finishDate, '# Finished time = finishDate')
})

t.test('list run over a pidList keeps order and duplicates, drops absent PIDs', async (t) => {
  const env = await setup(t)
  const storeDir = join(env.dir, 'store')
  await writeFixtureStore(storeDir, { count: 3, versions: 1, largeBytes: 10 })
  const store = await env.storeId(storeDir)
  const set = await env.setId('pidList', 'demo:3\nnope:1 demo:1\n\ndemo:3')
  const task = await env.task('list', { setUri: `objectSets/${set}.json`, storeUri: `objectStores/${store}.xml` })
  const { lines, log } = await env.run(task)
  t.same(lines.slice(1, -1), ['demo:3', 'demo:1', 'demo:3'])
  t.equal(log.resultType, 'Succeeded')
})

t.test('copy runs: every outcome line, overwrite and includeManaged honoured', async (t) => {
  const env = await setup(t)
  const q = join(env.dir, 'query')
  const s = join(env.dir, 'source')
  const d = join(env.dir, 'dest')
  await writeFixtureStore(q, { count: 9, versions: 1, largeBytes: 10 })
  // Source: demo:1..4; demo:2 has no managed datastream.
  const src = await writeFixtureStore(s, { count: 4, managed: (i) => i !== 1 })
  // Destination already holds a different demo:3.
  await writeFixtureStore(d, { count: 1, first: 3, versions: 1, largeBytes: 5 })
  const [query, source, dest] = [await env.storeId(q), await env.storeId(s), await env.storeId(d)]
  const set = await env.setId('pidList', 'demo:1 demo:2 demo:3 demo:9')

  const first = await env.run(await env.task('copy', copyData(set, query, source, dest)))
  t.same(first.lines.slice(1, -1), [
    'Copying demo:1..OK (new in destination)',
    'Copying demo:2..OK (new in destination)',
    'Copying demo:3..SKIPPED (exists in destination)',
    'Copying demo:9..SKIPPED (does not exist in source)',
  ])
  t.match(first.lines.at(-1), finished('succeeded'))
  t.equal(first.log.resultType, 'Succeeded')

  // Every version of every managed datastream arrives byte-identical.
  const demo1 = src[0]!
  for (const [key, bytes] of demo1.contents) {
    if (!key.startsWith('IMG+')) continue
    const [dsId, versionId] = key.split('+') as [string, string]
    t.same(await readFile(contentPath(d, 'demo:1', dsId, versionId)), bytes, `${key} byte-identical`)
  }
  const copied = (await filesystemConnector({ path: d }).readObject('demo:1'))!
  t.same(copied.datastreams.map((ds) => [ds.id, ds.controlGroup]), [['DC', 'X'], ['IMG', 'M'], ['EXT', 'E'], ['RED', 'R']], 'no conversion when not asked')
  t.equal(copied.datastreams[0]!.versions[1]!.xmlContent, demo1.inline.get('DC.1'), 'inline XML copied verbatim')
  await t.rejects(readFile(contentPath(d, 'demo:1', 'EXT', 'EXT.0')), { code: 'ENOENT' }, 'E content is not copied')

  const second = await env.run(await env.task('copy', copyData(set, query, source, dest, { overwrite: true, includeManaged: false })))
  t.same(second.lines.slice(1, -1), [
    'Copying demo:1..SKIPPED (has managed datastream(s))',
    'Copying demo:2..REPLACED (exists in destination)',
    'Copying demo:3..SKIPPED (has managed datastream(s))',
    'Copying demo:9..SKIPPED (does not exist in source)',
  ])

  const third = await env.run(await env.task('copy', copyData(set, query, source, dest, { overwrite: 'TRUE', includeManaged: true })))
  t.same(third.lines.slice(1, -1), [
    'Copying demo:1..REPLACED (exists in destination)',
    'Copying demo:2..REPLACED (exists in destination)',
    'Copying demo:3..REPLACED (exists in destination)',
    'Copying demo:9..SKIPPED (does not exist in source)',
  ])
  for (const [key, bytes] of src[2]!.contents) {
    if (!key.startsWith('IMG+')) continue
    const [dsId, versionId] = key.split('+') as [string, string]
    t.same(await readFile(contentPath(d, 'demo:3', dsId, versionId)), bytes, `replaced demo:3 ${key}`)
  }
})

t.test('copy converts E and R datastreams to managed with byte-identical content', async (t) => {
  const env = await setup(t)
  const s = join(env.dir, 'source')
  const d = join(env.dir, 'dest')
  const src = await writeFixtureStore(s, { count: 2 })
  const [source, dest] = [await env.storeId(s), await env.storeId(d)]
  const set = await env.setId('pidPattern', '*')
  // The three stores may coincide: query = source here.
  const { lines, log } = await env.run(await env.task('copy', copyData(set, source, source, dest, { copyExternal: true, copyRedirect: 'true' })))
  t.equal(log.resultType, 'Succeeded')
  t.same(lines.slice(1, -1).sort(), ['Copying demo:1..OK (new in destination)', 'Copying demo:2..OK (new in destination)'])
  const store = filesystemConnector({ path: d })
  for (const fx of src) {
    const obj = (await store.readObject(fx.pid))!
    t.same(obj.datastreams.map((ds) => [ds.id, ds.controlGroup]), [['DC', 'X'], ['IMG', 'M'], ['EXT', 'M'], ['RED', 'M']], `${fx.pid} converted`)
    t.same(obj.datastreams[2]!.versions[1]!.contentLocation, { type: 'INTERNAL_ID', ref: `${fx.pid}+EXT+EXT.1` })
    for (const [key, bytes] of fx.contents) {
      const [dsId, versionId] = key.split('+') as [string, string]
      t.same(await readFile(contentPath(d, fx.pid, dsId, versionId)), bytes, `${fx.pid} ${key} byte-identical`)
    }
  }

  // Only external: redirects stay redirects.
  const d2 = join(env.dir, 'dest2')
  const dest2 = await env.storeId(d2)
  await env.run(await env.task('copy', copyData(set, source, source, dest2, { copyExternal: true })))
  const obj = (await filesystemConnector({ path: d2 }).readObject('demo:1'))!
  t.same(obj.datastreams.map((ds) => ds.controlGroup), ['X', 'M', 'M', 'R'])
  t.same(obj.datastreams[3]!.versions[0]!.contentLocation, { type: 'URL', ref: 'http://example.org/content/0/RED.0?a=1&b=2' })
})

t.test('content the source cannot supply fails the run naming PID, datastream and version [D40]', async (t) => {
  const env = await setup(t)
  const s = join(env.dir, 'source')
  const d = join(env.dir, 'dest')
  await writeFixtureStore(s, { count: 2, externalContent: false })
  const [source, dest] = [await env.storeId(s), await env.storeId(d)]
  const set = await env.setId('pidList', 'demo:1 demo:2')
  const { lines, log } = await env.run(await env.task('copy', copyData(set, source, source, dest, { copyExternal: true })))
  t.equal(log.resultType, 'Failed')
  t.equal(lines.length, 3, 'the run stops at the first error')
  t.match(lines[1], /^Copying demo:1\.\.ERROR: The source store cannot supply the content of demo:1 datastream EXT version EXT\.0 /)
  t.match(lines[2], finished('failed'))
  t.notOk(await filesystemConnector({ path: d }).exists('demo:1'), 'nothing half-written')
})

t.test('pause and resume at checkpoints', async (t) => {
  const g = gate((text) => text === 'demo:2\n')
  const env = await setup(t, { hooks: { beforeWrite: g.hook } })
  const storeDir = join(env.dir, 'store')
  await writeFixtureStore(storeDir, { count: 4, versions: 1, largeBytes: 10 })
  const store = await env.storeId(storeDir)
  const set = await env.setId('pidList', 'demo:1 demo:2 demo:3 demo:4')
  const task = await env.task('list', { setUri: `objectSets/${set}`, storeUri: `objectStores/${store}` }, 'Starting')
  await g.reached
  await env.raw.updateTask(task.id, { state: 'Pausing' }, 'Running')
  await env.manager.examineNow()
  g.release()
  await env.waitState(task.id, 'Paused')
  const [log] = await env.logsOf(task.id)
  // While paused, nothing more is written.
  await new Promise((r) => setTimeout(r, 150))
  let lines = (await env.content(log!.id)).split('\n').slice(0, -1)
  t.equal(lines.length, 4)
  t.match(lines[3], paused)
  t.equal((await env.raw.getTask(task.id))!.state, 'Paused', 'stays paused')

  await env.raw.updateTask(task.id, { state: 'Resuming' }, 'Paused')
  env.manager.wake()
  await env.waitState(task.id, 'Idle')
  lines = (await env.content(log!.id)).split('\n').slice(0, -1)
  t.equal(lines.length, 8)
  t.match(lines[0], started)
  t.same(lines.slice(1, 3), ['demo:1', 'demo:2'])
  t.match(lines[3], paused)
  t.match(lines[4], resumed)
  t.same(lines.slice(5, 7), ['demo:3', 'demo:4'])
  t.match(lines[7], finished('succeeded'))
})

t.test('a pause during a copy line waits for the line to end [D29]', async (t) => {
  const g = gate((text) => text.startsWith('Copying demo:1..'))
  const env = await setup(t, { hooks: { beforeWrite: g.hook } })
  const s = join(env.dir, 'source')
  await writeFixtureStore(s, { count: 2, versions: 1, largeBytes: 10 })
  const [source, dest] = [await env.storeId(s), await env.storeId(join(env.dir, 'dest'))]
  const set = await env.setId('pidList', 'demo:1 demo:2')
  const task = await env.task('copy', copyData(set, source, source, dest), 'Starting')
  await g.reached
  await env.raw.updateTask(task.id, { state: 'Pausing' }, 'Running')
  await env.manager.examineNow()
  g.release()
  await env.waitState(task.id, 'Paused')
  await env.raw.updateTask(task.id, { state: 'Resuming' }, 'Paused')
  env.manager.wake()
  await env.waitState(task.id, 'Idle')
  const [log] = await env.logsOf(task.id)
  const lines = (await env.content(log!.id)).split('\n').slice(0, -1)
  t.equal(lines[1], 'Copying demo:1..OK (new in destination)')
  t.match(lines[2], paused)
  t.match(lines[3], resumed)
  t.equal(lines[4], 'Copying demo:2..OK (new in destination)')
  t.match(lines[5], finished('succeeded'))
})

t.test('resume before the runner paused: the manager sets Running [D27]', async (t) => {
  const g = gate((text) => text === 'demo:1\n')
  const env = await setup(t, { hooks: { beforeWrite: g.hook } })
  const storeDir = join(env.dir, 'store')
  await writeFixtureStore(storeDir, { count: 2, versions: 1, largeBytes: 10 })
  const store = await env.storeId(storeDir)
  const set = await env.setId('pidList', 'demo:1 demo:2')
  const task = await env.task('list', { setUri: `objectSets/${set}`, storeUri: `objectStores/${store}` }, 'Starting')
  await g.reached
  await env.raw.updateTask(task.id, { state: 'Pausing' }, 'Running')
  await env.manager.examineNow()
  await env.raw.updateTask(task.id, { state: 'Resuming' }, 'Pausing')
  await env.manager.examineNow()
  t.equal((await env.raw.getTask(task.id))!.state, 'Running', 'Running at once, not stuck in Resuming')
  g.release()
  await env.waitState(task.id, 'Idle')
  const [log] = await env.logsOf(task.id)
  const content = await env.content(log!.id)
  t.notMatch(content, /# Paused/, 'the latest signal (resume) won')
  t.equal(log!.resultType === 'Incomplete' ? (await env.raw.getTaskLog(log!.id))!.resultType : log!.resultType, 'Succeeded')
})

t.test('a pause overtaken by resume or cancel before the checkpoint writes no # Paused', async (t) => {
  for (const next of ['Resuming', 'Canceling'] as const) {
    const g = gate((text) => text === 'demo:1\n')
    // A long interval: only the runner itself sees the second change.
    const env = await setup(t, { hooks: { beforeWrite: g.hook }, manager: { intervalMs: 60_000 } })
    const storeDir = join(env.dir, 'store')
    await writeFixtureStore(storeDir, { count: 2, versions: 1, largeBytes: 10 })
    const store = await env.storeId(storeDir)
    const set = await env.setId('pidList', 'demo:1 demo:2')
    const task = await env.task('list', { setUri: `objectSets/${set}`, storeUri: `objectStores/${store}` }, 'Starting')
    await g.reached
    await env.raw.updateTask(task.id, { state: 'Pausing' }, 'Running')
    await env.manager.examineNow()
    await env.raw.updateTask(task.id, { state: next }, 'Pausing')
    g.release()
    await env.waitState(task.id, 'Idle')
    const [log] = await env.logsOf(task.id)
    const content = await env.content(log!.id)
    t.notMatch(content, /# Paused/, `${next}: never paused`)
    t.equal((await env.raw.getTaskLog(log!.id))!.resultType, next === 'Resuming' ? 'Succeeded' : 'Canceled')
    t.match(content.trimEnd().split('\n').at(-1), finished(next === 'Resuming' ? 'succeeded' : 'canceled'))
  }
})

t.test('cancel: running and paused runs end Canceled', async (t) => {
  const g = gate((text) => text === 'demo:2\n')
  const env = await setup(t, { hooks: { beforeWrite: g.hook } })
  const storeDir = join(env.dir, 'store')
  await writeFixtureStore(storeDir, { count: 4, versions: 1, largeBytes: 10 })
  const store = await env.storeId(storeDir)
  const set = await env.setId('pidList', 'demo:1 demo:2 demo:3 demo:4')
  const task = await env.task('list', { setUri: `objectSets/${set}`, storeUri: `objectStores/${store}` }, 'Starting')
  await g.reached
  await env.raw.updateTask(task.id, { state: 'Canceling' }, 'Running')
  await env.manager.examineNow()
  g.release()
  await env.waitState(task.id, 'Idle')
  const [log] = await env.logsOf(task.id)
  const record = (await env.raw.getTaskLog(log!.id))!
  t.equal(record.resultType, 'Canceled')
  const lines = (await env.content(log!.id)).split('\n').slice(0, -1)
  t.same(lines.slice(1, 3), ['demo:1', 'demo:2'])
  t.equal(lines.length, 4, 'stops at the next checkpoint')
  t.match(lines[3], finished('canceled'))

  // Cancel while paused.
  const g2 = gate((text) => text === 'demo:1\n')
  const env2 = await setup(t, { hooks: { beforeWrite: g2.hook } })
  const store2 = await env2.storeId(storeDir)
  const set2 = await env2.setId('pidList', 'demo:1 demo:2')
  const task2 = await env2.task('list', { setUri: `objectSets/${set2}`, storeUri: `objectStores/${store2}` }, 'Starting')
  await g2.reached
  await env2.raw.updateTask(task2.id, { state: 'Pausing' }, 'Running')
  await env2.manager.examineNow()
  g2.release()
  await env2.waitState(task2.id, 'Paused')
  await env2.raw.updateTask(task2.id, { state: 'Canceling' }, 'Paused')
  env2.manager.wake()
  await env2.waitState(task2.id, 'Idle')
  const [log2] = await env2.logsOf(task2.id)
  t.equal((await env2.raw.getTaskLog(log2!.id))!.resultType, 'Canceled')
  const lines2 = (await env2.content(log2!.id)).split('\n').slice(0, -1)
  t.match(lines2[2], paused)
  t.match(lines2[3], finished('canceled'))
})

t.test('a canceled pattern walk stops enumerating [D28]', async (t) => {
  const g = gate((text) => /^demo:\d+\n$/.test(text))
  const env = await setup(t, { hooks: { beforeWrite: g.hook } })
  const storeDir = join(env.dir, 'store')
  await writeFixtureStore(storeDir, { count: 40, versions: 1, largeBytes: 10, externalContent: false })
  const store = await env.storeId(storeDir)
  const task = await env.task('list', { setUri: 'objectSets/1', storeUri: `objectStores/${store}` }, 'Starting')
  await g.reached
  await env.raw.updateTask(task.id, { state: 'Canceling' }, 'Running')
  await env.manager.examineNow()
  g.release()
  await env.waitState(task.id, 'Idle')
  const [log] = await env.logsOf(task.id)
  const lines = (await env.content(log!.id)).split('\n').slice(0, -1)
  t.equal(lines.length, 3, 'one PID, then the end')
  t.match(lines[2], finished('canceled'))
})

t.test('a Starting task canceled before it starts goes Idle at once, with no log [D26]', async (t) => {
  const env = await setup(t, { manager: { intervalMs: 60_000 } })
  await env.manager.examineNow() // the pass scheduled by start() is done
  const store = await env.storeId(join(env.dir, 'store'))
  const task = await env.task('list', { setUri: 'objectSets/1', storeUri: `objectStores/${store}` })
  await env.raw.updateTask(task.id, { state: 'Starting' }, 'Idle')
  await env.raw.updateTask(task.id, { state: 'Canceling' }, 'Starting')
  await env.manager.examineNow()
  const now = (await env.raw.getTask(task.id))!
  t.equal(now.state, 'Idle')
  t.equal(now.activeLogId, undefined)
  t.same(await env.logsOf(task.id), [], 'no log')
})

t.test('a cancel racing with the start leaves no run and no log', async (t) => {
  let raw: Backend | undefined
  const env = await setup(t, {
    hooks: {
      createTaskLog: async (taskId, _start, create) => {
        const log = await create()
        // The client cancels between the manager's first and third start step.
        await raw!.updateTask(taskId, { state: 'Canceling' }, 'Starting')
        return log
      },
    },
  })
  raw = env.raw
  const store = await env.storeId(join(env.dir, 'store'))
  const task = await env.task('list', { setUri: 'objectSets/1', storeUri: `objectStores/${store}` }, 'Starting')
  await env.waitState(task.id, 'Idle')
  await env.manager.examineNow()
  t.same(await env.logsOf(task.id), [], 'the log made for the lost start is removed')
  t.equal((await env.raw.getTask(task.id))!.activeLogId, undefined)
})

t.test('failures are isolated per task and the manager keeps running [D44]', async (t) => {
  const env = await setup(t, {
    hooks: {
      createTaskLog: async (taskId, start, create) => {
        const task = await raw!.getTask(taskId)
        if (task?.name.startsWith('broken')) throw new Error('disk full')
        return create()
      },
    },
  })
  const raw: Backend | undefined = env.raw
  const storeDir = join(env.dir, 'store')
  await writeFixtureStore(storeDir, { count: 1, versions: 1, largeBytes: 10 })
  const store = await env.storeId(storeDir)
  const fedora = (await env.raw.createObjectStore({ name: 'remote fedora', type: 'fedora', data: '{"url":"http://localhost:1/fedora","username":"u","password":"p"}' })).id
  const query = await env.setId('query', '{"queryType":"SPARQL","queryText":"select ?s where {}"}')

  // 1. The log cannot be created: the task goes Idle, nothing else happens.
  const broken = await env.raw.createTask({
    name: 'broken one',
    type: 'list',
    state: 'Starting',
    data: JSON.stringify({ setUri: 'objectSets/1', storeUri: `objectStores/${store}` }),
    dependencies: { setIds: [1], storeIds: [store] },
  })
  env.manager.wake()
  await env.waitState(broken.id, 'Idle')
  t.same(await env.logsOf(broken.id), [])
  t.ok(env.system.some((m) => m.includes('disk full')), 'reported in the system log')

  // 2. A store type this server does not support: the run fails with ERROR.
  const onFedora = await env.run(await env.task('list', { setUri: 'objectSets/1', storeUri: `objectStores/${fedora}` }))
  t.equal(onFedora.log.resultType, 'Failed')
  t.match(onFedora.lines[1], /^ERROR: Fedora at http:\/\/localhost:1\/fedora could not be reached .*; check the store's URL and that Fedora is running\.$/)
  t.match(onFedora.lines[2], finished('failed'))

  // 3. A query set over a filesystem store.
  const onQuery = await env.run(await env.task('list', { setUri: `objectSets/${query}`, storeUri: `objectStores/${store}` }))
  t.match(onQuery.lines[1], /^ERROR: Query object sets can only be evaluated by a Fedora object store/)

  // 4. Unusable task data.
  const bad = await env.raw.createTask({ name: 'bad data', type: 'list', state: 'Idle', data: '{"setUri":"objectSets/1"}', dependencies: { setIds: [1], storeIds: [] } })
  const onBad = await env.run(bad)
  t.match(onBad.lines[1], /^ERROR: The task data member "storeUri" is missing/)

  // 5. The store directory vanished.
  const gone = await env.storeId(join(env.dir, 'gone'))
  await rm(join(env.dir, 'gone'), { recursive: true })
  const onGone = await env.run(await env.task('list', { setUri: 'objectSets/1', storeUri: `objectStores/${gone}` }))
  t.match(onGone.lines[1], /^ERROR: The directory of the filesystem store .* does not exist/)

  // After all that, a good task still runs.
  const good = await env.run(await env.task('list', { setUri: 'objectSets/1', storeUri: `objectStores/${store}` }))
  t.equal(good.log.resultType, 'Succeeded')
  t.same(good.lines.slice(1, -1), ['demo:1'])
})

t.test('start-up recovery cancels what was active (spec §5.8)', async (t) => {
  const env = await setup(t, { start: false })
  const store = await env.storeId(join(env.dir, 'store'))
  const data = JSON.stringify({ setUri: 'objectSets/1', storeUri: `objectStores/${store}` })
  const deps = { setIds: [1], storeIds: [store] }
  // A run that was mid-copy-line when the server died.
  const running = await env.raw.createTask({ name: 'was running', type: 'list', state: 'Idle', data, dependencies: deps })
  const log = await env.raw.createTaskLog(running.id, Date.now() - 1000)
  const writer = await env.raw.openTaskLogContent(log.id)
  await writer.write('# Started at 2011-11-02T14:15:30.123Z\nCopying demo:1..')
  await writer.close()
  await env.raw.updateTask(running.id, { state: 'Paused', activeLogId: log.id })
  const starting = await env.raw.createTask({ name: 'was starting', type: 'list', state: 'Starting', data, dependencies: deps })
  const idle = await env.raw.createTask({ name: 'idle', type: 'list', state: 'Idle', data, dependencies: deps })

  await env.manager.start()
  const r = (await env.raw.getTask(running.id))!
  t.equal(r.state, 'Idle')
  t.equal(r.activeLogId, undefined)
  const finishedLog = (await env.raw.getTaskLog(log.id))!
  t.equal(finishedLog.resultType, 'Canceled')
  t.ok(finishedLog.finishDate)
  const lines = (await env.content(log.id)).split('\n')
  t.equal(lines[1], 'Copying demo:1..', 'the open line is ended first')
  t.match(lines[2], finished('canceled'))
  t.equal((await env.raw.getTask(starting.id))!.state, 'Idle')
  t.same(await env.logsOf(starting.id), [], 'a task caught in Starting gets no log')
  t.equal((await env.raw.getTask(idle.id))!.state, 'Idle')
  t.ok(env.system.some((m) => m.includes('was running') && m.includes('auto-canceled')))
  t.ok(env.system.some((m) => m.includes('was starting') && m.includes('auto-canceled')))
})

t.test('an active task without a runner is set Idle, its log Failed', async (t) => {
  const env = await setup(t)
  const store = await env.storeId(join(env.dir, 'store'))
  const task = await env.task('list', { setUri: 'objectSets/1', storeUri: `objectStores/${store}` })
  const log = await env.raw.createTaskLog(task.id, Date.now())
  await env.raw.updateTask(task.id, { state: 'Running', activeLogId: log.id }, 'Idle')
  env.manager.wake()
  await env.waitState(task.id, 'Idle')
  await waitFor('log finished', async () => (await env.raw.getTaskLog(log.id))!.resultType !== 'Incomplete')
  t.equal((await env.raw.getTaskLog(log.id))!.resultType, 'Failed')
  const lines = (await env.content(log.id)).split('\n').slice(0, -1)
  t.match(lines[0], /^ERROR: /)
  t.match(lines[1], finished('failed'))
})

t.test('graceful shutdown cancels active runs and waits for them (spec §5.8)', async (t) => {
  const g = gate((text) => text === 'demo:1\n')
  const env = await setup(t, { hooks: { beforeWrite: g.hook } })
  const storeDir = join(env.dir, 'store')
  await writeFixtureStore(storeDir, { count: 2, versions: 1, largeBytes: 10 })
  const store = await env.storeId(storeDir)
  const set = await env.setId('pidList', 'demo:1 demo:2')
  const running = await env.task('list', { setUri: `objectSets/${set}`, storeUri: `objectStores/${store}` }, 'Starting')
  await g.reached
  const waiting = await env.task('list', { setUri: `objectSets/${set}`, storeUri: `objectStores/${store}` })
  await env.raw.updateTask(waiting.id, { state: 'Starting' }, 'Idle') // no wake: no runner yet

  let stopped = false
  const stopping = env.manager.shutdown().then(() => (stopped = true))
  await waitFor('Canceling', async () => (await env.raw.getTask(running.id))!.state === 'Canceling')
  t.notOk(stopped, 'shutdown waits for the run')
  g.release()
  await stopping
  t.equal((await env.raw.getTask(running.id))!.state, 'Idle')
  const [log] = await env.logsOf(running.id)
  t.equal(log!.resultType, 'Canceled')
  t.match((await env.content(log!.id)).trimEnd().split('\n').at(-1), finished('canceled'))
  t.equal((await env.raw.getTask(waiting.id))!.state, 'Idle', 'runner-less task idled at once')
  t.same(await env.logsOf(waiting.id), [])
  t.equal(env.manager.activeRuns, 0)
  await env.manager.shutdown() // idempotent
  env.manager.wake() // harmless after shutdown
})

t.test('custom run bodies and concurrent runs', async (t) => {
  const order: string[] = []
  const env = await setup(t, {
    manager: {
      runners: {
        list: async (ctx) => {
          order.push(`start ${ctx.task.name}`)
          for (let i = 0; i < 3; i++) {
            await ctx.log.line(`step ${i}`)
            await new Promise((r) => setTimeout(r, 20))
            await ctx.checkpoint()
          }
        },
      },
    },
  })
  const store = await env.storeId(join(env.dir, 'store'))
  const a = await env.task('list', { setUri: 'objectSets/1', storeUri: `objectStores/${store}` }, 'Starting')
  const b = await env.task('list', { setUri: 'objectSets/1', storeUri: `objectStores/${store}` }, 'Starting')
  await waitFor('both running', async () => env.manager.activeRuns === 2 || ((await env.raw.getTask(b.id))!.state === 'Idle' && undefined))
  await env.waitState(a.id, 'Idle')
  await env.waitState(b.id, 'Idle')
  for (const id of [a.id, b.id]) {
    const [log] = await env.logsOf(id)
    t.equal(log!.resultType, 'Succeeded')
    t.same((await env.content(log!.id)).split('\n').slice(1, 4), ['step 0', 'step 1', 'step 2'])
  }
  t.equal(order.length, 2)
})
