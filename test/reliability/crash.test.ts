/**
 * Reliability: `kill -9` in the middle of a stream of writes.
 *
 * The server runs as a child process (the built `dist/examples/server.js`).
 * Several writers create object sets and patch them with increasing version
 * numbers while a copy task runs; the server is killed with SIGKILL once a
 * few hundred writes were acknowledged. Then:
 *
 * - the database file, opened directly with better-sqlite3, passes
 *   `PRAGMA integrity_check` and `PRAGMA foreign_key_check`;
 * - every write that was answered 2xx is there (a created set exists; a
 *   patched set holds the acknowledged version or a later one);
 * - the restarted server serves the same data, recovers the interrupted task
 *   (`Idle`, its log `Canceled`), and accepts new writes.
 *
 * Three kill/restart cycles run on the same data directory.
 */
import t from 'tap'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startChildServer, SERVER_ENTRY } from '../helpers/child-server.js'
import type { ChildServer } from '../helpers/child-server.js'
import { request } from '../helpers/http.js'
import { writeFixtureStore } from '../fixtures/foxml-fixture.js'
import { json, recordResult, waitFor } from './helpers.js'

t.setTimeout(120_000)

const require = createRequire(import.meta.url)
const Database = require('better-sqlite3') as new (file: string, options?: { readonly?: boolean }) => {
  pragma(source: string): unknown
  prepare(sql: string): { all(): unknown[] }
  close(): void
}

const ADMIN: [string, string] = ['admin', 'crash-pass']
const WRITERS = 6
const CYCLES = 3
const KILL_AFTER_ACKS = 800

interface Acked {
  /** Set name → highest acknowledged version (0 = created). */
  versions: Map<string, number>
  count: number
}

interface SetRow { name: string; data: string }

/** Version stored in a set's data `demo:<n>`. */
const versionOf = (data: string) => Number(data.slice('demo:'.length))

t.test('kill -9 during writes loses no acknowledged write and leaves a sound database', { skip: existsSync(SERVER_ENTRY) ? false : 'run "npm run build" first' }, async (t) => {
  const started = Date.now()
  const dataDir = mkdtempSync(path.join(tmpdir(), 'cloudsync-crash-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const env = { CLOUDSYNC_DATA: dataDir }
  const dbFile = path.join(dataDir, 'cloudsync.db')
  let server: ChildServer | undefined
  t.teardown(() => { server?.child.kill('SIGKILL') })

  const acked: Acked = { versions: new Map(), count: 0 }
  const figures = { acknowledged: 0, attempted: 0, unanswered: 0, lost: 0, integrity: [] as string[], recoveredTasks: 0, writesPerSecond: [] as number[] }

  server = await startChildServer(env)
  const init = await request(server.base, 'POST', '/api/rest/service', json({ serviceInit: { initialAdminUsername: ADMIN[0], initialAdminPassword: ADMIN[1] } }))
  t.equal(init.status, 200, 'initialized')
  // A copy task with enough work to be mid-run at each kill.
  const storeRoot = path.join(dataDir, 'stores')
  await writeFixtureStore(path.join(storeRoot, 'source'), { count: 300, largeBytes: 200_000 })
  const admin = (base: string, method: string, p: string, body?: unknown) =>
    request(base, method, p, { basic: ADMIN, ...(body === undefined ? { headers: { Accept: 'application/json' } } : json(body)) })
  const src = await admin(server.base, 'POST', '/api/rest/objectStores', { objectStore: { name: 'source', type: 'filesystem', data: JSON.stringify({ path: path.join(storeRoot, 'source') }) } })
  const dst = await admin(server.base, 'POST', '/api/rest/objectStores', { objectStore: { name: 'dest', type: 'filesystem', data: JSON.stringify({ path: path.join(storeRoot, 'dest') }) } })
  t.equal(src.status, 201)
  t.equal(dst.status, 201)
  const taskData = JSON.stringify({
    setUri: 'objectSets/1', queryStoreUri: src.headers.location, sourceStoreUri: src.headers.location, destStoreUri: dst.headers.location,
    overwrite: 'true', includeManaged: 'true', copyExternal: 'false', copyRedirect: 'false'
  })
  const task = await admin(server.base, 'POST', '/api/rest/tasks', { task: { name: 'copy under fire', type: 'copy', state: 'Idle', data: taskData } })
  t.equal(task.status, 201)
  // Links carry the origin of the server that made them; the port changes at each restart.
  const taskUri = new URL(task.headers.location!).pathname

  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    const base = server.base
    // Start the copy and wait until it really runs.
    t.equal((await admin(base, 'PATCH', taskUri, { task: { state: 'Starting' } })).status, 200, `cycle ${cycle}: copy started`)
    await waitFor(async () => {
      const state = (await admin(base, 'GET', taskUri)).json().task.state as string
      // A quick copy may already be over: run it again.
      if (state === 'Idle') await admin(base, 'PATCH', taskUri, { task: { state: 'Starting' } })
      return state === 'Running' ? true : undefined
    }, 15_000, 'the copy to run')

    let stop = false
    let cycleAcks = 0
    const cycleStart = Date.now()
    const writer = async (w: number): Promise<void> => {
      for (let k = 0; !stop; k++) {
        const name = `c${cycle}-w${w}-s${k}`
        figures.attempted++
        let r
        try {
          r = await admin(base, 'POST', '/api/rest/objectSets', { objectSet: { name, type: 'pidList', data: 'demo:0' } })
        } catch {
          figures.unanswered++
          return
        }
        if (r.status !== 201) throw new Error(`create answered ${r.status}: ${r.text}`)
        const uri = new URL(r.headers.location!).pathname
        acked.versions.set(name, 0)
        acked.count++
        cycleAcks++
        for (let v = 1; v <= 5 && !stop; v++) {
          figures.attempted++
          try {
            r = await admin(base, 'PATCH', uri, { objectSet: { data: `demo:${v}` } })
          } catch {
            figures.unanswered++
            return
          }
          if (r.status !== 200) throw new Error(`patch answered ${r.status}: ${r.text}`)
          acked.versions.set(name, v)
          acked.count++
          cycleAcks++
        }
      }
    }
    const writers = Array.from({ length: WRITERS }, (_, w) => writer(w))
    await waitFor(async () => (cycleAcks >= KILL_AFTER_ACKS ? true : undefined), 30_000, 'acknowledged writes', 5)
    // The copy must be mid-run at the kill: whenever it has finished, start it again.
    const running = await waitFor(async () => {
      const state = (await admin(base, 'GET', taskUri)).json().task.state as string
      if (state === 'Idle') await admin(base, 'PATCH', taskUri, { task: { state: 'Starting' } })
      return state === 'Running' ? state : undefined
    }, 15_000, 'the copy to run at the kill', 5)
    server.child.kill('SIGKILL')
    const exit = await server.exited
    stop = true
    await Promise.all(writers)
    figures.writesPerSecond.push(Math.round(cycleAcks / ((Date.now() - cycleStart) / 1000)))
    t.equal(exit, 'SIGKILL', `cycle ${cycle}: killed with SIGKILL (copy was ${running})`)

    // The file itself, before any server touches it again.
    const db = new Database(dbFile)
    const integrity = db.pragma('integrity_check') as Array<{ integrity_check: string }>
    const foreignKeys = db.pragma('foreign_key_check') as unknown[]
    const rows = db.prepare('SELECT name, data FROM object_sets').all() as SetRow[]
    db.close()
    figures.integrity.push(integrity.map((r) => r.integrity_check).join(','))
    t.same(integrity, [{ integrity_check: 'ok' }], `cycle ${cycle}: PRAGMA integrity_check is ok`)
    t.same(foreignKeys, [], `cycle ${cycle}: no foreign-key violations`)
    const stored = new Map(rows.map((r) => [r.name, versionOf(r.data)]))
    const lost = [...acked.versions].filter(([name, v]) => !stored.has(name) || stored.get(name)! < v)
    figures.lost += lost.length
    t.same(lost, [], `cycle ${cycle}: all ${acked.count} acknowledged writes so far are in the file`)

    // Restart on the same data: same data through the API, the interrupted task recovered.
    server = await startChildServer(env)
    const sets = (await admin(server.base, 'GET', '/api/rest/objectSets')).json().objectSets as Array<{ name: string; data: string }>
    const served = new Map(sets.map((s) => [s.name, versionOf(s.data)]))
    t.same([...acked.versions].filter(([name, v]) => !served.has(name) || served.get(name)! < v), [], `cycle ${cycle}: the restarted server serves every acknowledged write`)
    const after = (await admin(server.base, 'GET', taskUri)).json().task
    t.equal(after.state, 'Idle', `cycle ${cycle}: the interrupted task is Idle after restart`)
    t.notOk('activeLogUri' in after, 'and has no active log')
    const logs = (await admin(server.base, 'GET', '/api/rest/taskLogs')).json().taskLogs as Array<{ resultType: string; contentUri: string; taskUri: string }>
    const latest = logs.find((l) => new URL(l.taskUri).pathname === taskUri)!
    t.equal(latest.resultType, 'Canceled', `cycle ${cycle}: the interrupted run's log is Canceled`)
    const content = await request(server.base, 'GET', new URL(latest.contentUri).pathname, { basic: ADMIN })
    t.match(content.text, /# Finished \(canceled\) at \S+\n$/, 'and its content ends with the canceled line')
    if (after.state === 'Idle' && latest.resultType === 'Canceled') figures.recoveredTasks++
    const fresh = await admin(server.base, 'POST', '/api/rest/objectSets', { objectSet: { name: `after-crash-${cycle}`, type: 'pidList', data: 'demo:0' } })
    t.equal(fresh.status, 201, `cycle ${cycle}: the restarted server accepts writes`)
  }
  server.child.kill('SIGTERM')
  t.equal(await server.exited, 0, 'the last server stops gracefully')
  figures.acknowledged = acked.count

  recordResult('crash', 'Crash (kill -9) during writes', t.passing(), started, [
    ['kill -9 / restart cycles', CYCLES],
    ['concurrent writers', WRITERS],
    ['writes attempted (set creates + patches)', figures.attempted],
    ['writes acknowledged (2xx)', figures.acknowledged],
    ['writes cut off by the kill (no answer)', figures.unanswered],
    ['acknowledged writes missing after a kill', figures.lost],
    ['acknowledged writes per second before the kill', figures.writesPerSecond.join(' / ')],
    ['PRAGMA integrity_check after each kill', figures.integrity.join(' / ')],
    ['interrupted copy runs recovered as Idle + Canceled log', figures.recoveredTasks]
  ], [
    'Each cycle kills the server (SIGKILL) once 800 writes of that cycle were acknowledged, while 6 writers are in flight and a 300-object copy task is running.',
    'A patched set counts as kept when it holds the acknowledged version or a later one (a write may commit before its answer is lost).'
  ])
})
