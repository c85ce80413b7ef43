/**
 * Task runs through the HTTP API of a real server (spec §4.6, §4.7, §5):
 * stores are created with POST objectStores, fixtures are written into the
 * store directories, tasks are started with POST/PATCH, and everything is
 * observed the way a client sees it (task state, activeLogUri, task log
 * entities, log content).
 *
 * Where a test must act while a run is in progress, the run is held at a
 * known object: that object's file in the source store is a FIFO, and the
 * copy waits in its open() until the test writes the object into it.
 */
import t from 'tap'
import type { Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { closeSync, constants, openSync } from 'node:fs'
import { mkdir, readdir, readFile, unlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { startTestServer } from './helpers/server.js'
import type { CloudSyncOptions } from '../src/index.js'
import { contentPath, objectPath } from '../src/backend/stores/filesystem-layout.js'
import { parseFoxml } from '../src/backend/stores/foxml.js'
import { writeFixtureStore } from './fixtures/foxml-fixture.js'
import { openSqliteBackend } from '../src/backend/sqlite/index.js'
import { closedPort } from './reliability/helpers.js'
import { text as streamText } from 'node:stream/consumers'
import type { FixtureObject } from './fixtures/foxml-fixture.js'
import { STARTED, PAUSED, RESUMED, finished, until } from './helpers/task-log.js'
import { checkFormat, content, copyData, copyLines, fsStore, finishedRun, getTask, ISO_MS, logsOf, make, objectPids, objectSet, pathOf, patchTask, rerun, task } from './helpers/task-api.js'
import type { Json } from './helpers/task-api.js'

/** A small object that fits one atomic pipe write. */
function smallFoxml(pid: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<foxml:digitalObject VERSION="1.1" PID="${pid}" xmlns:foxml="info:fedora/fedora-system:def/foxml#">
<foxml:objectProperties><foxml:property NAME="info:fedora/fedora-system:def/model#state" VALUE="Active"/></foxml:objectProperties>
<foxml:datastream ID="DC" STATE="A" CONTROL_GROUP="X" VERSIONABLE="true"><foxml:datastreamVersion ID="DC.0" LABEL="DC" MIMETYPE="text/xml"><foxml:xmlContent><dc>${pid}</dc></foxml:xmlContent></foxml:datastreamVersion></foxml:datastream>
</foxml:digitalObject>
`
}

/**
 * Replace the source object file of `pid` by a FIFO: a copy that reaches it
 * waits until `release()` writes the object into it. `abandon()` frees a
 * waiting reader (it then sees an empty file) so that no run hangs.
 */
async function holdAt(storeDir: string, pid: string) {
  const file = objectPath(storeDir, pid)
  await unlink(file).catch(() => undefined)
  await mkdir(path.dirname(file), { recursive: true })
  execFileSync('mkfifo', [file])
  return {
    release: () => writeFile(file, smallFoxml(pid)),
    abandon: () => {
      try {
        closeSync(openSync(file, constants.O_WRONLY | constants.O_NONBLOCK))
      } catch {
        // ENXIO: nobody is waiting
      }
    },
  }
}


for (const mode of ['worker thread', 'in-process'] as const) {
  const taskManager = (mode === 'in-process' ? { intervalMs: 200, workerThreads: false } : { intervalMs: 200 }) as CloudSyncOptions['taskManager']

  t.test(`copy runs (${mode}): every outcome line, overwrite and includeManaged, byte-identical content`, async (t) => {
    const s = await startTestServer(t, { taskManager })
    const q = await fsStore(s, 'Query')
    const src = await fsStore(s, 'Source')
    const dst = await fsStore(s, 'Dest')
    await writeFixtureStore(q.dir, { count: 9, versions: 1, largeBytes: 10 })
    // Source: demo:1..4, demo:2 without a managed datastream; three versions each, the last 70 kB.
    const source = await writeFixtureStore(src.dir, { count: 4, managed: (i) => i !== 1 })
    // The destination already holds a different demo:3.
    await writeFixtureStore(dst.dir, { count: 1, first: 3, versions: 1, largeBytes: 5 })
    const set = await objectSet(s, 'pidList', 'demo:1 demo:2 demo:3 demo:9')

    const first = await task(s, 'copy', copyData({ set, query: q.uri, source: src.uri, dest: dst.uri }))
    const run1 = await finishedRun(s, first.uri)
    t.same(copyLines(run1.lines), [
      'Copying demo:1..OK (new in destination)',
      'Copying demo:2..OK (new in destination)',
      'Copying demo:3..SKIPPED (exists in destination)',
      'Copying demo:9..SKIPPED (does not exist in source)',
    ])
    checkFormat(t, run1.text, 'succeeded', 'copy')
    t.equal(run1.lines.length, 6, 'nothing but the start, the four objects and the end')

    // The task log entity (spec §3.9).
    t.equal(run1.log.resultType, 'Succeeded')
    t.match(run1.log.startDate, ISO_MS)
    t.match(run1.log.finishDate, ISO_MS)
    t.ok(Date.parse(run1.log.finishDate) >= Date.parse(run1.log.startDate), 'finishes after it starts')
    t.equal(run1.log.taskUri, first.uri)
    t.equal(run1.log.contentUri, `${run1.log.uri}/content`)
    t.equal(run1.lines[0], `# Started at ${run1.log.startDate}`, 'the first line carries the start date')
    t.equal(run1.lines.at(-1), `# Finished (succeeded) at ${run1.log.finishDate}`, 'the last line carries the finish date')
    t.equal(run1.task.activeLogUri, undefined, 'no activeLogUri once Idle')
    const one = await s.admin('GET', pathOf(run1.log.uri), { headers: { Accept: 'application/json' } })
    t.same(one.json().taskLog, run1.log, 'GET taskLogs/{id} agrees with the list')

    // Every version of every managed datastream arrives byte-identical; inline XML verbatim; E/R untouched.
    const demo1 = source[0]!
    for (const [key, bytes] of demo1.contents) {
      const [dsId, versionId] = key.split('+') as [string, string]
      if (dsId !== 'IMG') continue
      t.same(await readFile(contentPath(dst.dir, 'demo:1', dsId, versionId)), bytes, `demo:1 ${key} byte-identical`)
    }
    const copied = parseFoxml(await readFile(objectPath(dst.dir, 'demo:1'), 'utf8'))!
    t.same(copied.datastreams.map((ds) => [ds.id, ds.controlGroup]), [['DC', 'X'], ['IMG', 'M'], ['EXT', 'E'], ['RED', 'R']])
    t.equal(copied.datastreams[0]!.versions[1]!.xmlContent, demo1.inline.get('DC.1'), 'inline XML copied verbatim')
    t.same(copied.datastreams[1]!.versions.map((v) => v.contentLocation), [0, 1, 2].map((v) => ({ type: 'INTERNAL_ID', ref: `demo:1+IMG+IMG.${v}` })))
    await t.rejects(readFile(contentPath(dst.dir, 'demo:1', 'EXT', 'EXT.0')), { code: 'ENOENT' }, 'E content is not copied unless asked')

    // overwrite=true, includeManaged=false.
    const second = await task(s, 'copy', copyData({ set, query: q.uri, source: src.uri, dest: dst.uri, overwrite: true, includeManaged: false }))
    const run2 = await finishedRun(s, second.uri)
    t.same(copyLines(run2.lines), [
      'Copying demo:1..SKIPPED (has managed datastream(s))',
      'Copying demo:2..REPLACED (exists in destination)',
      'Copying demo:3..SKIPPED (has managed datastream(s))',
      'Copying demo:9..SKIPPED (does not exist in source)',
    ])
    checkFormat(t, run2.text, 'succeeded', 'copy')

    // overwrite=true (any case, as a string), includeManaged=true: demo:3 is replaced by the source's.
    const third = await task(s, 'copy', copyData({ set, query: q.uri, source: src.uri, dest: dst.uri, overwrite: 'TRUE', includeManaged: true }))
    const run3 = await finishedRun(s, third.uri)
    t.same(copyLines(run3.lines), [
      'Copying demo:1..REPLACED (exists in destination)',
      'Copying demo:2..REPLACED (exists in destination)',
      'Copying demo:3..REPLACED (exists in destination)',
      'Copying demo:9..SKIPPED (does not exist in source)',
    ])
    await compareObject(t, source[2]!, dst.dir, ['IMG'])
    t.same(await objectPids(dst.dir), ['demo:1', 'demo:2', 'demo:3'])

    // A second run of the same task gets a new log; both are listed.
    const again = await rerun(s, first.uri)
    t.not(again.log.uri, run1.log.uri)
    t.same(copyLines(again.lines).map((l) => l.replace(/^Copying \S+\.\./, '')), ['SKIPPED (exists in destination)', 'SKIPPED (exists in destination)', 'SKIPPED (exists in destination)', 'SKIPPED (does not exist in source)'])
    t.equal((await logsOf(s, first.uri)).length, 2)
  })

  t.test(`copy converts External and Redirect datastreams (${mode})`, async (t) => {
    const s = await startTestServer(t, { taskManager })
    const src = await fsStore(s, 'Source')
    const both = await fsStore(s, 'Both')
    const extOnly = await fsStore(s, 'External only')
    const source = await writeFixtureStore(src.dir, { count: 2, versions: 2, largeBytes: 3000 })
    const set = await objectSet(s, 'pidPattern', 'demo:*')

    const all = await task(s, 'copy', copyData({ set, query: src.uri, source: src.uri, dest: both.uri, copyExternal: true, copyRedirect: true }))
    const run = await finishedRun(s, all.uri)
    t.equal(run.log.resultType, 'Succeeded')
    t.same(copyLines(run.lines).sort(), ['Copying demo:1..OK (new in destination)', 'Copying demo:2..OK (new in destination)'])
    for (const obj of source) await compareObject(t, obj, both.dir, ['IMG', 'EXT', 'RED'])
    const converted = parseFoxml(await readFile(objectPath(both.dir, 'demo:1'), 'utf8'))!
    t.same(converted.datastreams.map((ds) => [ds.id, ds.controlGroup]), [['DC', 'X'], ['IMG', 'M'], ['EXT', 'M'], ['RED', 'M']], 'E and R became M')
    t.same(converted.datastreams[2]!.versions.map((v) => v.contentLocation), [
      { type: 'INTERNAL_ID', ref: 'demo:1+EXT+EXT.0' },
      { type: 'INTERNAL_ID', ref: 'demo:1+EXT+EXT.1' },
    ])

    const ext = await task(s, 'copy', copyData({ set, query: src.uri, source: src.uri, dest: extOnly.uri, copyExternal: 'true', copyRedirect: 'false' }))
    t.equal((await finishedRun(s, ext.uri)).log.resultType, 'Succeeded')
    const half = parseFoxml(await readFile(objectPath(extOnly.dir, 'demo:2'), 'utf8'))!
    t.same(half.datastreams.map((ds) => [ds.id, ds.controlGroup]), [['DC', 'X'], ['IMG', 'M'], ['EXT', 'M'], ['RED', 'R']], 'only E converted')
    await compareObject(t, source[1]!, extOnly.dir, ['IMG', 'EXT'])
    await t.rejects(readFile(contentPath(extOnly.dir, 'demo:2', 'RED', 'RED.0')), { code: 'ENOENT' })
  })

  t.test(`content the source cannot supply fails the run naming PID, datastream and version [D40] (${mode})`, async (t) => {
    const s = await startTestServer(t, { taskManager })
    const src = await fsStore(s, 'Source')
    const dst = await fsStore(s, 'Dest')
    await writeFixtureStore(src.dir, { count: 2, versions: 1, largeBytes: 10, externalContent: false })
    const set = await objectSet(s, 'pidList', 'demo:1 demo:2')
    const run = await finishedRun(s, (await task(s, 'copy', copyData({ set, query: src.uri, source: src.uri, dest: dst.uri, copyExternal: true }))).uri)
    t.equal(run.log.resultType, 'Failed')
    checkFormat(t, run.text, 'failed', 'copy')
    t.equal(run.lines.length, 3, 'start, the failing object, end: nothing after the failure')
    t.match(run.lines[1], /^Copying demo:1\.\.ERROR: .*demo:1 datastream EXT version EXT\.0/, 'ERROR on the open line, naming PID, datastream and version')
    t.same(await objectPids(dst.dir), [], 'the failed object left nothing in the destination')
    const leftovers = (await readdir(dst.dir, { recursive: true })).filter((n) => String(n).includes('+'))
    t.same(leftovers, [], 'no content and no temporary files left behind')
  })
}

t.test('list runs: PIDs as found in the store, pattern and list sets', async (t) => {
  const s = await startTestServer(t, { taskManager: { intervalMs: 200 } })
  const store = await fsStore(s, 'Listed')
  await writeFixtureStore(store.dir, { count: 5, versions: 1, largeBytes: 10 })
  await writeFixtureStore(store.dir, { count: 2, namespace: 'other', versions: 1, largeBytes: 10 })
  const pattern = await objectSet(s, 'pidPattern', 'demo:*')
  const list = await task(s, 'list', JSON.stringify({ setUri: pattern, storeUri: store.uri }))
  const run = await finishedRun(s, list.uri)
  checkFormat(t, run.text, 'succeeded', 'list')
  t.same(run.lines.slice(1, -1).sort(), ['demo:1', 'demo:2', 'demo:3', 'demo:4', 'demo:5'], 'every matching object, nothing else (no content files)')
  t.equal(run.log.resultType, 'Succeeded')

  const pids = await objectSet(s, 'pidList', 'other:2 demo:9\n demo:1 other:2')
  const listed = await finishedRun(s, (await task(s, 'list', JSON.stringify({ setUri: pids, storeUri: store.uri }))).uri)
  t.same(listed.lines.slice(1, -1), ['other:2', 'demo:1', 'other:2'], 'list order and duplicates kept, absent PIDs dropped')

  // The default "All Objects" set.
  const everything = await finishedRun(s, (await task(s, 'list', JSON.stringify({ setUri: '/api/rest/objectSets/1', storeUri: store.uri }))).uri)
  t.equal(everything.lines.length - 2, 7)
})

t.test('a query set outside Fedora, or a store that cannot be reached, ends the run Failed with an ERROR line', async (t) => {
  const s = await startTestServer(t, { taskManager: { intervalMs: 200 } })
  const store = await fsStore(s, 'Plain')
  await writeFixtureStore(store.dir, { count: 1, versions: 1, largeBytes: 10 })
  const query = await objectSet(s, 'query', '{"queryType":"SPARQL","queryText":"select ?s where { ?s ?p ?o }"}')
  const listRun = await finishedRun(s, (await task(s, 'list', JSON.stringify({ setUri: query, storeUri: store.uri }))).uri)
  t.equal(listRun.log.resultType, 'Failed')
  checkFormat(t, listRun.text, 'failed', 'list')
  t.match(listRun.lines[1], /^ERROR: Query object sets can only be evaluated by a Fedora object store/)

  const copyRun = await finishedRun(s, (await task(s, 'copy', copyData({ set: query, query: store.uri, source: store.uri, dest: store.uri }))).uri)
  t.equal(copyRun.log.resultType, 'Failed')
  t.match(copyRun.lines[1], /^ERROR: Query object sets can only be evaluated by a Fedora object store/)

  const port = await closedPort()
  const fedora = (await make(s, 'objectStores', 'objectStore', { name: 'Fedora nowhere', type: 'fedora', data: `{"url":"http://127.0.0.1:${port}/fedora","username":"fedoraAdmin","password":"pw-secret"}` })).uri
  const all = await objectSet(s, 'pidPattern', '*')
  const fedoraRun = await finishedRun(s, (await task(s, 'copy', copyData({ set: all, query: store.uri, source: fedora, dest: store.uri }))).uri)
  t.equal(fedoraRun.log.resultType, 'Failed')
  checkFormat(t, fedoraRun.text, 'failed', 'copy')
  t.match(fedoraRun.lines[1], new RegExp(`^Copying demo:1\\.\\.ERROR: Fedora at http://127\\.0\\.0\\.1:${port}/fedora could not be reached`), 'the object being copied, and what failed')
  t.notMatch(fedoraRun.text, /pw-secret/, 'no password in the log')
  const fedoraList = await finishedRun(s, (await task(s, 'list', JSON.stringify({ setUri: all, storeUri: fedora }))).uri)
  t.equal(fedoraList.log.resultType, 'Failed')
  t.match(fedoraList.lines[1], /^ERROR: Fedora at .* could not be reached/)
})

t.test('pause and resume a running copy; activeLogUri and the active log (spec §4.6, §4.7) [D31]', async (t) => {
  const s = await startTestServer(t, { taskManager: { intervalMs: 200 } })
  const q = await fsStore(s, 'Query')
  const src = await fsStore(s, 'Source')
  const dst = await fsStore(s, 'Dest')
  await writeFixtureStore(q.dir, { count: 40, managed: () => false, externalContent: false })
  await writeFixtureStore(src.dir, { count: 40, versions: 1, largeBytes: 10, externalContent: false })
  const hold = await holdAt(src.dir, 'demo:21')
  const set = await objectSet(s, 'pidList', Array.from({ length: 40 }, (_, i) => `demo:${i + 1}`).join(' '))
  const copy = await task(s, 'copy', copyData({ set, query: q.uri, source: src.uri, dest: dst.uri }))
  try {
    // Held at demo:21: the first twenty are in the destination.
    await until('demo:1..20 copied', async () => (await objectPids(dst.dir)).length === 20)
    const running = await getTask(s, copy.uri)
    t.equal(running.state, 'Running')
    t.type(running.activeLogUri, 'string', 'activeLogUri while the run is active')
    const active = (await s.admin('GET', pathOf(running.activeLogUri), { headers: { Accept: 'application/json' } })).json().taskLog
    t.equal(active.resultType, 'Incomplete')
    t.equal(active.finishDate, undefined, 'no finishDate while incomplete')
    t.equal(active.taskUri, copy.uri)
    t.match((await content(s, active)).split('\n')[0], STARTED, 'the content is readable while the run is active')

    const del = await s.admin('DELETE', pathOf(running.activeLogUri))
    t.equal(del.status, 409, 'the active log of a running task cannot be deleted [D31]')
    t.equal((await s.admin('DELETE', pathOf(copy.uri))).status, 409, 'nor the running task')

    const pausing = await patchTask(s, copy.uri, { state: 'Pausing' })
    t.equal(pausing.status, 200)
    t.equal(pausing.json().task.state, 'Pausing')
    await hold.release()
    const paused = await until('Paused', async () => {
      const now = await getTask(s, copy.uri)
      return now.state === 'Paused' ? now : undefined
    })
    t.equal(paused.activeLogUri, running.activeLogUri, 'the same active log while paused')
    const whilePaused = (await content(s, active)).split('\n').slice(0, -1)
    t.match(whilePaused.at(-1), PAUSED, '# Paused at <ts> is the last line while paused')
    const before = copyLines(whilePaused).length
    t.ok(before >= 21, 'paused at a checkpoint after the object in progress')
    t.equal((await objectPids(dst.dir)).length, before, 'every copied object is logged')
    t.equal((await s.admin('DELETE', pathOf(running.activeLogUri))).status, 409, 'nor while paused')

    const resuming = await patchTask(s, copy.uri, { state: 'Resuming' })
    t.equal(resuming.status, 200)
    const run = await finishedRun(s, copy.uri)
    t.equal(run.log.uri, running.activeLogUri)
    t.equal(run.log.resultType, 'Succeeded')
    checkFormat(t, run.text, 'succeeded', 'copy')
    const p = run.lines.findIndex((l) => PAUSED.test(l))
    t.match(run.lines[p + 1], RESUMED, '# Resumed at right after # Paused at')
    t.ok(run.lines.slice(0, p).includes('Copying demo:21..OK (new in destination)'), 'the held object was finished before the pause')
    t.same(copyLines(run.lines), Array.from({ length: 40 }, (_, i) => `Copying demo:${i + 1}..OK (new in destination)`), 'every object once, in list order')
    t.equal(run.task.activeLogUri, undefined, 'no activeLogUri once Idle')
    t.same((await objectPids(dst.dir)).length, 40)

    // Idle now: the log can go, then the task.
    t.equal((await s.admin('DELETE', pathOf(run.log.uri))).status, 204)
    t.equal((await s.admin('DELETE', pathOf(copy.uri))).status, 204)
  } finally {
    hold.abandon()
  }
})

t.test('cancel a running copy: Canceled, and nothing copied that the log does not show', async (t) => {
  const s = await startTestServer(t, { taskManager: { intervalMs: 200 } })
  const q = await fsStore(s, 'Query')
  const src = await fsStore(s, 'Source')
  const dst = await fsStore(s, 'Dest')
  await writeFixtureStore(q.dir, { count: 60, managed: () => false, externalContent: false })
  await writeFixtureStore(src.dir, { count: 60, versions: 1, largeBytes: 10, externalContent: false })
  const hold = await holdAt(src.dir, 'demo:5')
  const set = await objectSet(s, 'pidList', Array.from({ length: 60 }, (_, i) => `demo:${i + 1}`).join(' '))
  const copy = await task(s, 'copy', copyData({ set, query: q.uri, source: src.uri, dest: dst.uri }))
  try {
    await until('demo:1..4 copied', async () => (await objectPids(dst.dir)).length === 4)
    const canceling = await patchTask(s, copy.uri, { state: 'Canceling' })
    t.equal(canceling.status, 200)
    t.equal(canceling.json().task.state, 'Canceling')
    t.equal((await patchTask(s, copy.uri, { state: 'Running' })).status, 409, 'no way back from Canceling')
    await hold.release()
    const run = await finishedRun(s, copy.uri)
    t.equal(run.task.state, 'Idle')
    t.equal(run.task.activeLogUri, undefined)
    t.equal(run.log.resultType, 'Canceled')
    checkFormat(t, run.text, 'canceled', 'copy')
    const logged = copyLines(run.lines).map((l) => /^Copying (\S+)\.\./.exec(l)![1]!).sort()
    t.ok(logged.includes('demo:5'), 'the object in progress was finished and logged')
    t.same(await objectPids(dst.dir), logged, 'the destination holds exactly the objects the log shows')
    t.ok(logged.length < 60 || run.lines.length === 62, 'stopped at a checkpoint')
  } finally {
    hold.abandon()
  }
})

/** The destination's copy of `obj` has every version of the given datastreams byte-identical. */
async function compareObject(t: Test, obj: FixtureObject, destDir: string, dsIds: string[]) {
  for (const [key, bytes] of obj.contents) {
    const [dsId, versionId] = key.split('+') as [string, string]
    if (!dsIds.includes(dsId)) continue
    t.same(await readFile(contentPath(destDir, obj.pid, dsId, versionId)), bytes, `${obj.pid} ${key} byte-identical`)
  }
}

t.test('graceful shutdown during a copy: the run ends Canceled, every copied object logged (spec §5.8)', async (t) => {
  const s = await startTestServer(t, { taskManager: { intervalMs: 200 } })
  const q = await fsStore(s, 'Query')
  const src = await fsStore(s, 'Source')
  const dst = await fsStore(s, 'Dest')
  await writeFixtureStore(q.dir, { count: 30, managed: () => false, externalContent: false })
  await writeFixtureStore(src.dir, { count: 30, versions: 1, largeBytes: 10, externalContent: false })
  const hold = await holdAt(src.dir, 'demo:3')
  const set = await objectSet(s, 'pidList', Array.from({ length: 30 }, (_, i) => `demo:${i + 1}`).join(' '))
  const copy = await task(s, 'copy', copyData({ set, query: q.uri, source: src.uri, dest: dst.uri }))
  const taskId = Number(pathOf(copy.uri).split('/').pop())
  try {
    await until('demo:1..2 copied', async () => (await objectPids(dst.dir)).length === 2)
    const stopped = s.stop()
    await hold.release()
    await stopped
  } finally {
    hold.abandon()
  }
  // Look at what the stopped server left, with a backend of our own.
  const backend = openSqliteBackend({ dataDir: s.dataDir })
  t.teardown(() => backend.close())
  const stored = (await backend.getTask(taskId))!
  t.equal(stored.state, 'Idle')
  t.equal(stored.activeLogId, undefined)
  const [log] = (await backend.listTaskLogs()).filter((l) => l.taskId === taskId)
  t.equal(log!.resultType, 'Canceled')
  const text = await streamText((await backend.readTaskLogContent(log!.id))! as AsyncIterable<Buffer>)
  checkFormat(t, text, 'canceled', 'copy')
  const logged = copyLines(text.split('\n')).map((l) => /^Copying (\S+)\.\./.exec(l)![1]!).sort()
  t.ok(logged.includes('demo:3'), 'the object in progress was finished')
  t.same(await objectPids(dst.dir), logged, 'the destination holds exactly the objects the log shows')
})
