/**
 * Copy runs in worker threads (copy-offload.ts, copy-worker.ts), driven
 * through the real task manager, the real SQLite backend and real
 * filesystem stores: a pattern set walked by two workers, a list set by one.
 *
 * Where a test must act while a worker is at a known object, that object's
 * file in the source store is a FIFO: the worker blocks in it (a blocking
 * open and read) until the test writes the object into it.
 */
import t from 'tap'
import type { Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { closeSync, constants, openSync, writeSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { text as streamText } from 'node:stream/consumers'
import { openSqliteBackend } from '../src/backend/sqlite/index.js'
import type { TaskLogRecord, TaskRecord, TaskState } from '../src/backend/types.js'
import { contentPath, objectDir, objectPath } from '../src/backend/stores/filesystem-layout.js'
import { enumerateShare, filesystemConnector } from '../src/backend/stores/filesystem.js'
import type { ObjectSetSpec } from '../src/backend/stores/types.js'
import { runCopyInWorker } from '../src/backend/tasks/copy-offload.js'
import { idleCopyWorkers } from '../src/backend/tasks/copy-pool.js'
import { LogContent } from '../src/backend/tasks/log-format.js'
import { TaskManager } from '../src/backend/tasks/manager.js'
import type { TaskManagerOptions } from '../src/backend/tasks/manager.js'
import type { RunContext } from '../src/backend/tasks/runner.js'
import { parseTaskData } from '../src/backend/tasks/task-data.js'
import { writeFixtureStore } from './fixtures/foxml-fixture.js'
import { PAUSED, RESUMED, finished, COPY_LINE, until } from './helpers/task-log.js'


const pause = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function setup(t: Test, manager: TaskManagerOptions = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'copy-parallel-'))
  const raw = openSqliteBackend({ dataDir: join(dir, 'data') })
  const system: string[] = []
  const tasks = new TaskManager(raw, { intervalMs: 50, log: (m) => system.push(m), copyThreads: 2, ...manager })
  t.teardown(async () => {
    await tasks.shutdown()
    await raw.close()
    await rm(dir, { recursive: true, force: true })
  })
  await tasks.start()
  let names = 0
  const env = {
    dir,
    raw,
    manager: tasks,
    system,
    async store(name: string): Promise<{ dir: string; id: number }> {
      const path = join(dir, name)
      await mkdir(path, { recursive: true })
      return { dir: path, id: (await raw.createObjectStore({ name, type: 'filesystem', data: JSON.stringify({ path }) })).id }
    },
    async set(type: 'pidPattern' | 'pidList', data: string): Promise<number> {
      return (await raw.createObjectSet({ name: `set ${++names}`, type, data })).id
    },
    async copy(set: number, query: number, source: number, dest: number, overwrite = false): Promise<TaskRecord> {
      const data = JSON.stringify({
        setUri: `objectSets/${set}`,
        queryStoreUri: `objectStores/${query}`,
        sourceStoreUri: `objectStores/${source}`,
        destStoreUri: `objectStores/${dest}`,
        overwrite: String(overwrite),
        includeManaged: 'true',
        copyExternal: 'false',
        copyRedirect: 'false',
      })
      const parsed = parseTaskData('copy', data)
      const task = await raw.createTask({ name: `copy ${++names}`, type: 'copy', state: 'Starting', data, dependencies: parsed.ok ? parsed.dependencies : { setIds: [], storeIds: [] } })
      tasks.wake()
      return task
    },
    async setState(task: TaskRecord, state: TaskState, from: TaskState) {
      await raw.updateTask(task.id, { state }, from)
      await tasks.examineNow()
    },
    state: async (task: TaskRecord) => (await raw.getTask(task.id))!.state,
    async lines(task: TaskRecord): Promise<string[]> {
      const log = (await raw.listTaskLogs()).find((l) => l.taskId === task.id)
      if (log === undefined) return []
      const stream = await raw.readTaskLogContent(log.id)
      const text = stream === undefined ? '' : await streamText(stream as AsyncIterable<Buffer>)
      return text.split('\n').slice(0, -1)
    },
    /** Wait for the run to end; its log record and lines. */
    async done(task: TaskRecord): Promise<{ log: TaskLogRecord; lines: string[] }> {
      const log = await until(`the run of task ${task.id}`, async () => {
        const now = await raw.getTask(task.id)
        const record = (await raw.listTaskLogs()).find((l) => l.taskId === task.id)
        return now?.state === 'Idle' && record !== undefined && record.resultType !== 'Incomplete' ? record : undefined
      })
      return { log, lines: await env.lines(task) }
    },
  }
  return env
}

/** Object PIDs (files without `+`) in a store directory, sorted. */
async function objectPids(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && !entry.name.includes('+')) out.push(decodeURIComponent(entry.name))
  }
  return out.sort()
}

/** Every file under `dir` (relative path → bytes). */
async function snapshot(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>()
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    const path = join(entry.parentPath ?? entry.path, entry.name)
    out.set(relative(dir, path), await readFile(path))
  }
  return out
}

/** The PIDs each of the two shares of a pattern walk of `dir` gets. */
async function shares(dir: string): Promise<[string[], string[]]> {
  const store = filesystemConnector({ path: dir })
  const out: [string[], string[]] = [[], []]
  for (const index of [0, 1]) {
    for await (const pid of enumerateShare(store, '*', new AbortController().signal, { index, count: 2 })) out[index]!.push(pid)
  }
  return out
}

/** A small object that fits one atomic pipe write. */
function smallFoxml(pid: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<foxml:digitalObject VERSION="1.1" PID="${pid}" xmlns:foxml="info:fedora/fedora-system:def/foxml#">
<foxml:datastream ID="DC" STATE="A" CONTROL_GROUP="X"><foxml:datastreamVersion ID="DC.0" MIMETYPE="text/xml"><foxml:xmlContent><dc>${pid}</dc></foxml:xmlContent></foxml:datastreamVersion></foxml:datastream>
</foxml:digitalObject>
`
}

/**
 * Make the source object file of `pid` a FIFO. `reached()` resolves once a
 * worker has opened it (it then waits in its read); `release(text?)` writes
 * the object (or `text`) and lets it go on; `abandon()` frees any reader (it
 * reads nothing).
 */
async function holdAt(t: Test, storeDir: string, pid: string) {
  const file = objectPath(storeDir, pid)
  await unlink(file).catch(() => undefined)
  await mkdir(dirname(file), { recursive: true })
  execFileSync('mkfifo', [file])
  let fd: number | undefined
  const tryOpen = () => {
    try {
      fd ??= openSync(file, constants.O_WRONLY | constants.O_NONBLOCK)
      return true
    } catch {
      return false // ENXIO: no reader yet
    }
  }
  const hold = {
    reached: () => until(`a worker at ${pid}`, tryOpen),
    release: (text = smallFoxml(pid)) => {
      if (fd === undefined) throw new Error(`nobody is reading ${pid}`)
      writeSync(fd, text)
      closeSync(fd)
      fd = undefined
    },
    abandon: () => {
      if (fd !== undefined || tryOpen()) closeSync(fd!)
      fd = undefined
    },
  }
  t.teardown(hold.abandon)
  return hold
}

function copyLines(lines: string[]): string[] {
  return lines.filter((l) => l.startsWith('Copying '))
}

function pidOf(line: string): string {
  return /^Copying (\S+)\.\./.exec(line)![1]!
}

t.test('a pattern set copied by two worker threads: one line per object, byte-identical results', async (t) => {
  const env = await setup(t)
  const source = await env.store('source')
  const fixtures = await writeFixtureStore(source.dir, { count: 120, versions: 2, largeBytes: 3000, managed: (i) => i % 7 !== 3 })
  await writeFixtureStore(source.dir, { count: 8, namespace: 'other', versions: 1, largeBytes: 10 })
  const [first, second] = await shares(source.dir)
  t.ok(first.length > 20 && second.length > 20, 'both workers have work')
  const parallel = await env.store('parallel')
  const single = await env.store('single')
  // Already in the destination: different objects, not to be overwritten.
  await writeFixtureStore(parallel.dir, { count: 3, first: 10, versions: 1, largeBytes: 5 })
  await writeFixtureStore(single.dir, { count: 3, first: 10, versions: 1, largeBytes: 5 })
  const set = await env.set('pidPattern', 'demo:*')

  const run = await env.done(await env.copy(set, source.id, source.id, parallel.id))
  t.equal(run.log.resultType, 'Succeeded')
  t.match(run.lines.at(-1), finished('succeeded'))
  const lines = copyLines(run.lines)
  t.equal(lines.length, run.lines.length - 2, 'nothing but copy lines between start and end')
  t.same(lines.filter((l) => !COPY_LINE.test(l)), [], 'every line whole and in the §5.5 form')
  t.same(lines.map(pidOf).sort(), fixtures.map((f) => f.pid).sort(), 'exactly one line per matching object')
  const skipped = new Set(['demo:10', 'demo:11', 'demo:12'])
  t.same(lines.filter((l) => !l.endsWith(skipped.has(pidOf(l)) ? '..SKIPPED (exists in destination)' : '..OK (new in destination)')), [], 'the right outcome on every line')

  // The same copy by a single worker in list order writes the same bytes.
  const list = await env.set('pidList', fixtures.map((f) => f.pid).join(' '))
  const reference = await env.done(await env.copy(list, source.id, source.id, single.id))
  t.equal(reference.log.resultType, 'Succeeded')
  t.same(copyLines(reference.lines).map(pidOf), fixtures.map((f) => f.pid), 'the list set in list order')
  const got = await snapshot(parallel.dir)
  const want = await snapshot(single.dir)
  t.same([...got.keys()].sort(), [...want.keys()].sort(), 'the same files')
  t.same([...got].filter(([name, bytes]) => !bytes.equals(want.get(name)!)).map(([name]) => name), [], 'every file byte-identical')
  for (const fx of fixtures.slice(0, 5)) {
    for (const [key, bytes] of fx.contents) {
      if (!key.startsWith('IMG+')) continue
      const [dsId, versionId] = key.split('+') as [string, string]
      t.same(got.get(relative(parallel.dir, contentPath(parallel.dir, fx.pid, dsId, versionId))), bytes, `${fx.pid} ${key} as in the source`)
    }
  }
})

t.test('a pidList set is copied by one worker, in list order, duplicates kept', async (t) => {
  const env = await setup(t)
  const source = await env.store('source')
  const dest = await env.store('dest')
  await writeFixtureStore(source.dir, { count: 4, versions: 1, largeBytes: 10 })
  const set = await env.set('pidList', 'demo:3 demo:1 nope:1\ndemo:3 demo:2 demo:1')
  const run = await env.done(await env.copy(set, source.id, source.id, dest.id))
  t.same(copyLines(run.lines), [
    'Copying demo:3..OK (new in destination)',
    'Copying demo:1..OK (new in destination)',
    'Copying demo:3..SKIPPED (exists in destination)',
    'Copying demo:2..OK (new in destination)',
    'Copying demo:1..SKIPPED (exists in destination)',
  ])
  t.same(await objectPids(dest.dir), ['demo:1', 'demo:2', 'demo:3'])
})

/**
 * Query store of `count` plain objects, a source store with the same objects,
 * two of them held (one per share), and a copy task started and waiting at both.
 */
async function heldCopy(t: Test, env: Awaited<ReturnType<typeof setup>>, count: number) {
  const query = await env.store('query')
  const source = await env.store('source')
  const dest = await env.store('dest')
  await writeFixtureStore(query.dir, { count, managed: () => false, externalContent: false })
  await writeFixtureStore(source.dir, { count, versions: 1, largeBytes: 10, externalContent: false })
  const [first, second] = await shares(query.dir)
  // Held in the middle of each share, so that each worker has copied some objects and has more to go.
  const a = first[Math.floor(first.length / 2)]!
  const b = second[Math.floor(second.length / 2)]!
  const holdA = await holdAt(t, source.dir, a)
  const holdB = await holdAt(t, source.dir, b)
  const task = await env.copy(await env.set('pidPattern', '*'), query.id, source.id, dest.id)
  await holdA.reached()
  await holdB.reached()
  return { query, dest, a, b, holdA, holdB, task }
}

t.test('pause and resume with two workers: # Paused once, after both have stopped', async (t) => {
  const env = await setup(t)
  const { query, dest, a, b, holdA, holdB, task } = await heldCopy(t, env, 60)
  await env.setState(task, 'Pausing', 'Running')

  // One worker lets go and stops at its next checkpoint; the other is still busy: no pause yet.
  holdB.release()
  await until(`the line of ${b}`, async () => (await env.lines(task)).includes(`Copying ${b}..OK (new in destination)`))
  const settled = (await objectPids(dest.dir)).length
  await pause(300)
  t.equal(await env.state(task), 'Pausing', 'not Paused while a worker is still copying')
  t.notOk((await env.lines(task)).some((l) => PAUSED.test(l)), 'no # Paused yet')
  t.equal((await objectPids(dest.dir)).length, settled, 'the stopped worker copies nothing more')

  holdA.release()
  await until('Paused', async () => (await env.state(task)) === 'Paused')
  const whilePaused = await env.lines(task)
  t.match(whilePaused.at(-1), PAUSED, '# Paused at is the last line')
  t.equal(whilePaused.filter((l) => PAUSED.test(l)).length, 1, 'written once')
  t.ok(whilePaused.includes(`Copying ${a}..OK (new in destination)`), 'the object in progress was finished first')
  t.same(copyLines(whilePaused).map(pidOf).sort(), await objectPids(dest.dir), 'every copied object is logged, every logged object copied')
  const copied = (await objectPids(dest.dir)).length
  t.ok(copied < 60, 'paused before the end')
  await pause(200)
  t.equal((await objectPids(dest.dir)).length, copied, 'nothing is copied while paused')
  t.same(await env.lines(task), whilePaused, 'nothing is logged while paused')

  await env.setState(task, 'Resuming', 'Paused')
  const run = await env.done(task)
  t.equal(run.log.resultType, 'Succeeded')
  const p = run.lines.findIndex((l) => PAUSED.test(l))
  t.match(run.lines[p + 1], RESUMED, '# Resumed right after # Paused: no line between')
  t.equal(run.lines.filter((l) => PAUSED.test(l) || RESUMED.test(l)).length, 2)
  const lines = copyLines(run.lines)
  t.same(lines.filter((l) => !COPY_LINE.test(l)), [])
  t.same(lines.map(pidOf).sort(), (await objectPids(query.dir)), 'every object once')
  t.same(await objectPids(dest.dir), await objectPids(query.dir))
})

t.test('cancel with two workers: both finish the object in progress, then stop', async (t) => {
  const env = await setup(t)
  const { dest, a, b, holdA, holdB, task } = await heldCopy(t, env, 60)
  await env.setState(task, 'Canceling', 'Running')
  holdA.release()
  holdB.release()
  const run = await env.done(task)
  t.equal(run.log.resultType, 'Canceled')
  t.match(run.lines.at(-1), finished('canceled'))
  const lines = copyLines(run.lines)
  t.same(lines.filter((l) => !COPY_LINE.test(l)), [], 'whole lines only')
  t.ok(lines.includes(`Copying ${a}..OK (new in destination)`) && lines.includes(`Copying ${b}..OK (new in destination)`), 'both objects in progress finished and logged')
  t.same(lines.map(pidOf).sort(), await objectPids(dest.dir), 'the destination holds exactly the objects the log shows')
  t.ok(lines.length < 60, 'the walk stopped')
})

t.test('a failure in one worker: the other finishes its object, then the failed line ends the log', async (t) => {
  const env = await setup(t)
  const query = await env.store('query')
  const source = await env.store('source')
  const dest = await env.store('dest')
  await writeFixtureStore(query.dir, { count: 60, managed: () => false, externalContent: false })
  await writeFixtureStore(source.dir, { count: 60, versions: 1, largeBytes: 10, externalContent: false })
  const [first, second] = await shares(query.dir)
  const a = first[Math.floor(first.length / 2)]!
  const bad = second[Math.floor(second.length / 2)]!
  const holdA = await holdAt(t, source.dir, a)
  const holdBad = await holdAt(t, source.dir, bad)
  const set = await env.set('pidPattern', '*')
  const task = await env.copy(set, query.id, source.id, dest.id)

  await holdA.reached()
  await holdBad.reached()
  // Cut short: not an object a copy may write. Its worker fails while the other still waits at a.
  const text = smallFoxml(bad)
  holdBad.release(text.slice(0, text.lastIndexOf('</foxml:datastream>')))
  await pause(300)
  t.equal(await env.state(task), 'Running', 'the run waits for the worker still copying')
  t.notOk((await env.lines(task)).some((l) => l.includes('ERROR')), 'no ERROR while a worker is still copying')
  holdA.release()

  const run = await env.done(task)
  t.equal(run.log.resultType, 'Failed')
  t.match(run.lines.at(-1), finished('failed'))
  t.match(run.lines.at(-2), new RegExp(`^Copying ${bad}\\.\\.ERROR: The object file of ${bad} in the filesystem store .* is not valid FOXML 1\\.1; repair or remove it\\.$`), 'the failed object\'s line, completed by the ERROR')
  const others = copyLines(run.lines).slice(0, -1)
  t.same(others.filter((l) => !COPY_LINE.test(l)), [], 'every other line whole')
  t.equal(run.lines.filter((l) => l.includes('ERROR')).length, 1, 'one ERROR')
  t.ok(others.includes(`Copying ${a}..OK (new in destination)`), 'the other worker finished its object and logged it before the ERROR')
  t.same(others.map(pidOf).sort(), await objectPids(dest.dir), 'the destination holds exactly the objects logged as copied')
  t.notOk((await objectPids(dest.dir)).includes(bad), 'nothing of the failed object')
})

t.test('a destination directory removed during a run is made again', async (t) => {
  const env = await setup(t)
  const query = await env.store('query')
  const source = await env.store('source')
  const dest = await env.store('dest')
  // Two PIDs in the same object directory, with a held object between them.
  const byDir = new Map<string, number>()
  let pair: [number, number] | undefined
  for (let n = 1; pair === undefined; n++) {
    const dir = objectDir('/', `demo:${n}`)
    const seen = byDir.get(dir)
    if (seen !== undefined) pair = [seen, n]
    else byDir.set(dir, n)
  }
  const [x, y] = pair.map((n) => `demo:${n}`) as [string, string]
  for (const store of [query, source]) {
    for (const pid of [x, y]) await writeFixtureStore(store.dir, { count: 1, first: Number(pid.slice(5)), versions: 2, largeBytes: 100, externalContent: false })
    await writeFixtureStore(store.dir, { count: 1, first: 0, versions: 1, largeBytes: 10, externalContent: false })
  }
  const hold = await holdAt(t, source.dir, 'demo:0')
  const set = await env.set('pidList', `${x} demo:0 ${y}`)
  const task = await env.copy(set, query.id, source.id, dest.id)
  await hold.reached()
  t.same(await objectPids(dest.dir), [x], 'the first object is copied')
  // Its directory goes away (with everything else) while the worker waits.
  for (const name of await readdir(dest.dir)) await rm(join(dest.dir, name), { recursive: true })
  hold.release()
  const run = await env.done(task)
  t.equal(run.log.resultType, 'Succeeded')
  t.same(copyLines(run.lines), [`Copying ${x}..OK (new in destination)`, 'Copying demo:0..OK (new in destination)', `Copying ${y}..OK (new in destination)`])
  t.same(await objectPids(dest.dir), ['demo:0', y].sort(), 'written into the directory made again')
  const copied = await filesystemConnector({ path: dest.dir }).readObject(y)
  t.equal(copied?.datastreams.find((d) => d.id === 'IMG')?.versions.length, 2)
})

t.test('a worker blocked in a slow object: the lines it finished before are in the log meanwhile', async (t) => {
  const env = await setup(t)
  const query = await env.store('query')
  const source = await env.store('source')
  const dest = await env.store('dest')
  await writeFixtureStore(query.dir, { count: 8, managed: () => false, externalContent: false })
  await writeFixtureStore(source.dir, { count: 8, versions: 1, largeBytes: 10, externalContent: false })
  const hold = await holdAt(t, source.dir, 'demo:6')
  const set = await env.set('pidList', 'demo:1 demo:2 demo:3 demo:4 demo:5 demo:6 demo:7 demo:8')
  const task = await env.copy(set, query.id, source.id, dest.id)
  await hold.reached()
  const before = ['demo:1', 'demo:2', 'demo:3', 'demo:4', 'demo:5'].map((pid) => `Copying ${pid}..OK (new in destination)`)
  const shown = await until('the finished lines in the log', async () => {
    const lines = copyLines(await env.lines(task))
    return lines.length >= 5 ? lines : undefined
  }, 5000)
  t.same(shown, before, 'every finished object, in order, while the worker waits')
  t.equal(await env.state(task), 'Running')
  hold.release()
  const run = await env.done(task)
  t.equal(run.log.resultType, 'Succeeded')
  t.same(copyLines(run.lines), [...before, ...['demo:6', 'demo:7', 'demo:8'].map((pid) => `Copying ${pid}..OK (new in destination)`)])
})

t.test('the workers come to the run\'s checkpoint before their first object (a signal may predate the listener)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'copy-parallel-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const sourceDir = join(dir, 'source')
  const destDir = join(dir, 'dest')
  await writeFixtureStore(sourceDir, { count: 6, versions: 1, largeBytes: 10 })
  await mkdir(destDir)
  const written: string[] = []
  let checkpoints = 0
  const ctx = {
    log: new LogContent({ write: async (text: string) => void written.push(text), close: async () => undefined }),
    // As if a cancel had been signalled before the copy listened for signals.
    checkpoint: async () => {
      checkpoints++
      throw new Error('canceled before the start')
    },
    onSignal: () => () => undefined,
  } as unknown as RunContext
  const stores = { query: filesystemConnector({ path: sourceDir }), source: filesystemConnector({ path: sourceDir }), dest: filesystemConnector({ path: destDir }) }
  const flags = { overwrite: false, includeManaged: true, copyExternal: false, copyRedirect: false }
  const sets: ObjectSetSpec[] = [{ type: 'pidPattern', pattern: '*' }, { type: 'pidList', pids: ['demo:1', 'demo:2'] }]
  for (const set of sets) {
    checkpoints = 0
    await t.rejects(runCopyInWorker(ctx, stores, set, flags, 2), /canceled before the start/, `${set.type}: the run's checkpoint decides`)
    t.equal(checkpoints, 1, `${set.type}: asked once, with every worker waiting`)
    t.same(await objectPids(destDir), [], `${set.type}: nothing copied`)
    t.same(written, [], `${set.type}: nothing logged`)
  }
})

t.test('worker threads are kept for the next copy', async (t) => {
  const env = await setup(t)
  const query = await env.store('query')
  const source = await env.store('source')
  await writeFixtureStore(query.dir, { count: 20, managed: () => false, externalContent: false })
  await writeFixtureStore(source.dir, { count: 20, versions: 1, largeBytes: 10, externalContent: false })
  const first = await env.done(await env.copy(await env.set('pidPattern', '*'), query.id, source.id, (await env.store('dest 1')).id))
  t.equal(first.log.resultType, 'Succeeded')
  const kept = idleCopyWorkers()
  t.ok(kept >= 2, 'both threads are kept')

  const hold = await holdAt(t, source.dir, 'demo:5')
  const task = await env.copy(await env.set('pidList', 'demo:4 demo:5 demo:6'), query.id, source.id, (await env.store('dest 2')).id)
  await hold.reached()
  t.equal(idleCopyWorkers(), kept - 1, 'the next copy takes a kept thread')
  hold.release()
  const second = await env.done(task)
  t.same(copyLines(second.lines), ['demo:4', 'demo:5', 'demo:6'].map((pid) => `Copying ${pid}..OK (new in destination)`))
  t.equal(idleCopyWorkers(), kept, 'and gives it back')
})
