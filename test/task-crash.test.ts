/**
 * Crash safety (spec §5.7.1, §5.8): the real server (`dist/examples/server.js`,
 * built by `npm test`'s pretest) is killed with SIGKILL while a copy task is
 * writing objects, then restarted on the same data directory.
 */
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startChildServer } from './helpers/child-server.js'
import type { ChildServer } from './helpers/child-server.js'
import { request } from './helpers/http.js'
import type { RequestOptions } from './helpers/http.js'
import { contentPath, encodeName, isTempName, objectPath, parseFileName } from '../src/backend/stores/filesystem-layout.js'
import { parseFoxml } from '../src/backend/stores/foxml.js'
import { writeFixtureStore } from './fixtures/foxml-fixture.js'
import { TS, until } from './helpers/task-log.js'

type Json = any

const ADMIN: [string, string] = ['admin', 'pw-admin']
const OBJECTS = 300
// The object being written when the server is killed: one of its versions is big.
const BIG_PID = 'demo:40'
const BIG_BYTES = 128 * 1024 * 1024

function call(server: ChildServer, method: string, p: string, body?: unknown, accept = 'application/json') {
  const options: RequestOptions = { basic: ADMIN, headers: { Accept: accept } }
  if (body !== undefined) {
    options.headers = { ...options.headers, 'Content-Type': 'application/json' }
    options.body = JSON.stringify(body)
  }
  return request(server.base, method, p.startsWith('http') ? new URL(p).pathname : p, options)
}

async function json(server: ChildServer, method: string, p: string, body?: unknown): Promise<Json> {
  const r = await call(server, method, p, body)
  if (r.status >= 300) throw new Error(`${method} ${p}: ${r.status} ${r.text}`)
  return r.json()
}

const pathOf = (uri: string) => new URL(uri).pathname

interface StoreFiles {
  objects: string[]
  contents: Array<{ pid: string; dsId: string; versionId: string; name: string }>
  temps: string[]
}

/** What is in a store directory, by kind. */
async function storeFiles(dir: string): Promise<StoreFiles> {
  const out: StoreFiles = { objects: [], contents: [], temps: [] }
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue
    if (isTempName(entry.name)) {
      out.temps.push(entry.name)
      continue
    }
    const parsed = parseFileName(entry.name)
    if (parsed?.kind === 'object') out.objects.push(parsed.pid)
    else if (parsed?.kind === 'content') out.contents.push({ ...parsed, name: entry.name })
  }
  out.objects.sort()
  return out
}

t.test('SIGKILL during a copy: restart cancels the run; no partial object, no stray temporary (spec §5.8)', async (t) => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'cloudsync-crash-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const env = { CLOUDSYNC_DATA: dataDir }
  let server = await startChildServer(env)
  t.teardown(() => void server.child.kill('SIGKILL'))
  const init = await request(server.base, 'POST', '/api/rest/service', {
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ serviceInit: { initialAdminUsername: ADMIN[0], initialAdminPassword: ADMIN[1] } }),
  })
  t.equal(init.status, 200)

  const sourceDir = path.join(dataDir, 'stores', 'source')
  const destDir = path.join(dataDir, 'stores', 'dest')
  const source = (await json(server, 'POST', '/api/rest/objectStores', { objectStore: { name: 'Source', type: 'filesystem', data: JSON.stringify({ path: sourceDir }) } })).objectStore
  const dest = (await json(server, 'POST', '/api/rest/objectStores', { objectStore: { name: 'Dest', type: 'filesystem', data: JSON.stringify({ path: destDir }) } })).objectStore
  // Two managed versions per object; demo:40's second one takes a while to copy.
  const fixtures = await writeFixtureStore(sourceDir, { count: OBJECTS, versions: 2, largeBytes: 20_000, externalContent: false })
  const expected = new Map(fixtures.map((f) => [f.pid, f]))
  const big = Buffer.alloc(BIG_BYTES, 'cloudsync ')
  await writeFile(contentPath(sourceDir, BIG_PID, 'IMG', 'IMG.1'), big)
  expected.get(BIG_PID)!.contents.set('IMG+IMG.1', big)
  const set = (await json(server, 'POST', '/api/rest/objectSets', { objectSet: { name: 'In order', type: 'pidList', data: fixtures.map((f) => f.pid).join(' ') } })).objectSet

  const data = JSON.stringify({
    setUri: set.uri,
    queryStoreUri: source.uri,
    sourceStoreUri: source.uri,
    destStoreUri: dest.uri,
    overwrite: 'false',
    includeManaged: 'true',
    copyExternal: 'false',
    copyRedirect: 'false',
  })
  const task = (await json(server, 'POST', '/api/rest/tasks', { task: { name: 'Copy everything', type: 'copy', state: 'Starting', data } })).task

  // Kill it while it writes the big version (its temporary file is there).
  const activeLogUri: string = await until('the run to start', async () => (await json(server, 'GET', task.uri)).task.activeLogUri)
  const bigDir = path.dirname(objectPath(destDir, BIG_PID))
  const bigTemp = `${encodeName(BIG_PID)}+IMG+IMG.1+~`
  await until('the big version being written', async () => (await readdir(bigDir).catch(() => [])).some((n) => n.startsWith(bigTemp)), 60_000)
  server.child.kill('SIGKILL')
  t.equal(await server.exited, 'SIGKILL')

  // What the crash left: every object file is complete FOXML with complete content.
  const afterCrash = await storeFiles(destDir)
  t.same(afterCrash.objects, fixtures.slice(0, 39).map((f) => f.pid).sort(), 'the objects before demo:40 were copied, demo:40 was not')
  t.ok(afterCrash.temps.length > 0, 'the kill left temporary files')
  t.same(afterCrash.contents.filter((c) => c.pid === BIG_PID), [], 'nothing of the object in progress was moved into place')
  let complete = 0
  for (const pid of afterCrash.objects) {
    const obj = parseFoxml(await readFile(objectPath(destDir, pid), 'utf8'))
    if (obj === undefined || obj.pid !== pid) {
      t.fail(`${pid}: the object file is not complete FOXML`)
      continue
    }
    const managed = obj.datastreams.filter((d) => d.controlGroup === 'M')
    if (managed.length !== 1 || managed[0]!.versions.length !== 2) t.fail(`${pid}: managed datastreams lost`)
    for (const ds of managed) {
      for (const v of ds.versions) {
        const want = expected.get(pid)!.contents.get(`${ds.id}+${v.id}`)
        const got = await readFile(contentPath(destDir, pid, ds.id, v.id)).catch(() => undefined)
        if (want === undefined || got === undefined || !got.equals(want)) t.fail(`${pid} ${ds.id} ${v.id}: content missing or different`)
      }
    }
    complete++
  }
  t.equal(complete, afterCrash.objects.length, 'every object file in the destination is complete, with all its content byte-identical')

  // Restart on the same data directory.
  server = await startChildServer(env)
  t.match(server.output(), /task \d+ \(Copy everything\) was Running at start-up; auto-canceled/, 'recovery is reported in the system log')
  const idle = (await json(server, 'GET', task.uri)).task
  t.equal(idle.state, 'Idle')
  t.equal(idle.activeLogUri, undefined)
  // URIs carry the new port: compare paths.
  const logs = (await json(server, 'GET', '/api/rest/taskLogs')).taskLogs.filter((l: Json) => pathOf(l.taskUri) === pathOf(task.uri))
  t.equal(logs.length, 1)
  const log = logs[0]
  t.equal(pathOf(log.uri), pathOf(activeLogUri), 'the log of the killed run')
  t.equal(log.resultType, 'Canceled')
  t.match(log.finishDate, new RegExp(`^${TS}$`))
  const text = (await call(server, 'GET', log.contentUri, undefined, 'text/plain')).text
  const lines = text.split('\n').slice(0, -1)
  t.ok(text.endsWith('\n'))
  t.match(lines[0], new RegExp(`^# Started at ${TS}$`))
  t.equal(lines.at(-1), `# Finished (canceled) at ${log.finishDate}`, 'a final # Finished (canceled) line')
  const body = lines.slice(1, -1)
  const open = body.filter((l) => !/^Copying demo:\d+\.\.OK \(new in destination\)$/.test(l))
  t.ok(open.length === 0 || (open.length === 1 && /^Copying demo:\d+\.\.$/.test(open[0]!) && body.at(-1) === open[0]), 'only whole lines, but for the object in progress at the kill')
  const logged = body.filter((l) => l.endsWith('..OK (new in destination)')).map((l) => l.slice('Copying '.length, l.indexOf('..')))
  t.same(logged, fixtures.slice(0, logged.length).map((f) => f.pid), 'the log shows copies in set order')
  t.same(logged.filter((pid) => !afterCrash.objects.includes(pid)), [], 'every object the log shows as copied is in the destination')

  // A list task over the destination reports exactly its object files, and
  // leaves no temporary of the killed writer behind.
  const list = (await json(server, 'POST', '/api/rest/tasks', { task: { name: 'List destination', type: 'list', state: 'Starting', data: JSON.stringify({ setUri: '/api/rest/objectSets/1', storeUri: dest.uri }) } })).task
  const listLog = await until('the list run', async () => {
    if ((await json(server, 'GET', list.uri)).task.state !== 'Idle') return undefined
    return (await json(server, 'GET', '/api/rest/taskLogs')).taskLogs.find((l: Json) => l.taskUri === list.uri && l.finishDate !== undefined)
  })
  t.equal(listLog.resultType, 'Succeeded')
  const listed = (await call(server, 'GET', listLog.contentUri, undefined, 'text/plain')).text.split('\n').slice(1, -2).sort()
  const afterList = await storeFiles(destDir)
  t.same(listed, afterList.objects, 'the list shows exactly the object files')
  t.same(afterList.objects, afterCrash.objects, 'no object appeared or vanished')
  t.same(afterList.temps, [], `no temporary file left (${afterCrash.temps.length} after the kill)`)
  // Content renamed into place just before the kill, whose object file was not yet: complete, and invisible to readers.
  for (const c of afterList.contents.filter((c) => !afterList.objects.includes(c.pid))) {
    const want = expected.get(c.pid)?.contents.get(`${c.dsId}+${c.versionId}`)
    t.same(await readFile(contentPath(destDir, c.pid, c.dsId, c.versionId)), want, `${c.name} (no object yet) is complete`)
  }

  server.child.kill('SIGTERM')
  t.equal(await server.exited, 0, 'graceful stop')
})
