/**
 * Reliability: a minute of mixed read/write load at saturation.
 *
 * The server runs as a child process (`dist/examples/server.js`); autocannon
 * runs in a second child process (`load-client.mjs`) with 12 keep-alive
 * connections looping over reads and writes. Meanwhile this process keeps a
 * list task and a copy task (40 FOXML objects between two filesystem stores)
 * running — restarting each as soon as it is Idle — and deletes finished task
 * logs, and samples the server's RSS and open file descriptors every second.
 *
 * Pass criteria: zero connection errors, zero timeouts, zero 5xx (and in
 * fact zero non-2xx); every task run succeeds; after a 15 s warm-up, RSS
 * ends less than 30 % above its post-warm-up envelope and the descriptor
 * count within +10 of it; the server answers and stops gracefully afterwards.
 *
 * `CLOUDSYNC_LOAD_SECONDS` shortens or lengthens the run (default 60).
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startChildServer, SERVER_ENTRY } from '../helpers/child-server.js'
import { basicHeader, request } from '../helpers/http.js'
import { writeFixtureStore } from '../fixtures/foxml-fixture.js'
import { json, median, procSample, recordResult } from './helpers.js'
import type { ProcSample } from './helpers.js'

const SECONDS = Number(process.env.CLOUDSYNC_LOAD_SECONDS ?? 60)
const WARMUP_SECONDS = Math.min(15, Math.floor(SECONDS / 4))
const CONNECTIONS = 12
const RSS_GROWTH_LIMIT = 0.3
const FD_GROWTH_LIMIT = 10
t.setTimeout((SECONDS + 90) * 1000)

const ADMIN: [string, string] = ['admin', 'load-pass']
const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'load-client.mjs')

interface LoadResult {
  seconds: number
  connections: number
  requests: number
  requestsPerSecond: number
  latencyP50: number
  latencyP99: number
  latencyMax: number
  errors: number
  timeouts: number
  non2xx: number
  fivexx: number
  resets: number
  statusCounts: Record<string, number>
}

function runLoad(url: string): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLIENT, JSON.stringify({ url, seconds: SECONDS, connections: CONNECTIONS, authorization: basicHeader(...ADMIN) })], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (c: Buffer) => { out += c.toString() })
    child.stderr.on('data', (c: Buffer) => { err += c.toString() })
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`load client exited ${code}: ${err}`))
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!) as LoadResult)
      } catch {
        reject(new Error(`load client printed no result: ${out} ${err}`))
      }
    })
  })
}

t.test(`${SECONDS} s of mixed load while tasks run: no errors, no 5xx, flat memory and descriptors`, { skip: existsSync(SERVER_ENTRY) ? false : 'run "npm run build" first' }, async (t) => {
  const started = Date.now()
  const dataDir = mkdtempSync(path.join(tmpdir(), 'cloudsync-load-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const server = await startChildServer({ CLOUDSYNC_DATA: dataDir })
  t.teardown(async () => {
    server.child.kill('SIGKILL')
    await server.exited
  })
  const pid = server.child.pid!
  const base = server.base
  const admin = (method: string, p: string, body?: unknown) => request(base, method, p, { basic: ADMIN, ...(body === undefined ? { headers: { Accept: 'application/json' } } : json(body)) })
  t.equal((await request(base, 'POST', '/api/rest/service', json({ serviceInit: { initialAdminUsername: ADMIN[0], initialAdminPassword: ADMIN[1] } }))).status, 200, 'initialized')

  const storeRoot = path.join(dataDir, 'stores')
  await writeFixtureStore(path.join(storeRoot, 'source'), { count: 40 })
  const src = await admin('POST', '/api/rest/objectStores', { objectStore: { name: 'source', type: 'filesystem', data: JSON.stringify({ path: path.join(storeRoot, 'source') }) } })
  const dst = await admin('POST', '/api/rest/objectStores', { objectStore: { name: 'dest', type: 'filesystem', data: JSON.stringify({ path: path.join(storeRoot, 'dest') }) } })
  const srcUri = src.headers.location!
  const dstUri = dst.headers.location!
  const list = await admin('POST', '/api/rest/tasks', { task: { name: 'list under load', type: 'list', state: 'Starting', data: JSON.stringify({ setUri: 'objectSets/1', storeUri: srcUri }) } })
  const copy = await admin('POST', '/api/rest/tasks', { task: { name: 'copy under load', type: 'copy', state: 'Starting', data: JSON.stringify({ setUri: 'objectSets/1', queryStoreUri: srcUri, sourceStoreUri: srcUri, destStoreUri: dstUri, overwrite: 'true', includeManaged: 'true', copyExternal: 'true', copyRedirect: 'true' }) } })
  t.equal(list.status, 201, 'list task created and starting')
  t.equal(copy.status, 201, 'copy task created and starting')

  // Keep the tasks busy and the log list short for the whole run.
  let running = true
  const runs = { restarts: 0, logsDeleted: 0, results: {} as Record<string, number>, keeperErrors: [] as string[] }
  const seenLogs = new Set<string>()
  const keeper = (async () => {
    while (running) {
      try {
        const tasks = (await admin('GET', '/api/rest/tasks')).json().tasks as Array<{ uri: string; state: string }>
        for (const task of tasks) {
          if (task.state !== 'Idle') continue
          const r = await admin('PATCH', new URL(task.uri).pathname, { task: { state: 'Starting' } })
          if (r.status === 200) runs.restarts++
          else if (r.status !== 409) runs.keeperErrors.push(`restart: ${r.status} ${r.text}`)
        }
        const logs = (await admin('GET', '/api/rest/taskLogs')).json().taskLogs as Array<{ uri: string; resultType: string }>
        for (const log of logs) {
          if (log.resultType === 'Incomplete' || seenLogs.has(log.uri)) continue
          seenLogs.add(log.uri)
          runs.results[log.resultType] = (runs.results[log.resultType] ?? 0) + 1
          const r = await admin('DELETE', new URL(log.uri).pathname)
          if (r.status === 204) runs.logsDeleted++
          else runs.keeperErrors.push(`delete log: ${r.status}`)
        }
      } catch (err) {
        runs.keeperErrors.push(String(err))
      }
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  })()

  const samples: ProcSample[] = []
  const loadStarted = Date.now()
  samples.push(procSample(pid, loadStarted))
  const sampler = setInterval(() => samples.push(procSample(pid, loadStarted)), 1000)
  let load: LoadResult
  try {
    load = await runLoad(base)
  } finally {
    clearInterval(sampler)
    running = false
    await keeper
  }

  // Flatness. Memory breathes with garbage collection (tens of MB here), so
  // the reference is the envelope right after the warm-up — the highest
  // sample of the next 10 s — and the end level is the median of the last
  // 10 samples: a leak shows as an end level above the envelope.
  const window = (from: number, to: number) => samples.filter((s) => s.atMs >= from * 1000 && s.atMs < to * 1000)
  const warm = window(WARMUP_SECONDS, WARMUP_SECONDS + 10)
  const tail = samples.slice(-10)
  const warmRss = Math.max(...warm.map((s) => s.rssKb))
  const endRss = median(tail.map((s) => s.rssKb))
  const warmFds = Math.max(...warm.map((s) => s.fds))
  const endFds = median(tail.map((s) => s.fds))
  const steady = samples.filter((s) => s.atMs >= WARMUP_SECONDS * 1000)
  const maxRss = Math.max(...steady.map((s) => s.rssKb))
  const maxFds = Math.max(...steady.map((s) => s.fds))
  const rssGrowth = (endRss - warmRss) / warmRss
  const rssSlope = slopePerMinute(steady.map((s) => [s.atMs, s.rssKb / 1024]))

  t.equal(load.errors, 0, 'no connection errors')
  t.equal(load.timeouts, 0, 'no timeouts')
  t.equal(load.fivexx, 0, 'no 5xx')
  t.equal(load.non2xx, 0, `no non-2xx at all (${JSON.stringify(load.statusCounts)})`)
  t.equal(load.resets, 0, 'no create failed (the sequence never had to restart)')
  t.ok(load.requests > SECONDS * 200, `saturating: ${load.requests} requests`)
  t.same(runs.keeperErrors, [], 'task restarts and log deletes all answered as expected')
  t.ok(runs.restarts >= 4, `tasks were restarted during the load (${runs.restarts})`)
  t.same(Object.keys(runs.results).filter((k) => k !== 'Succeeded'), [], `every task run succeeded (${JSON.stringify(runs.results)})`)
  t.ok(rssGrowth < RSS_GROWTH_LIMIT, `RSS after warm-up ${warmRss} kB → end ${endRss} kB (${(rssGrowth * 100).toFixed(1)} %, limit ${RSS_GROWTH_LIMIT * 100} %; trend ${rssSlope.toFixed(1)} MB/min)`)
  t.ok(endFds <= warmFds + FD_GROWTH_LIMIT, `open descriptors after warm-up ${warmFds} → end ${endFds} (limit +${FD_GROWTH_LIMIT})`)
  t.equal((await request(base, 'GET', '/api/rest/service.json')).status, 200, 'the server answers after the load')
  server.child.kill('SIGTERM')
  t.equal(await server.exited, 0, 'and stops gracefully (running tasks canceled)')

  const first = samples[0]!
  const everyFive = samples.filter((_, i) => i % 5 === 0)
  recordResult('load', 'Load', t.passing(), started, [
    ['duration (s)', Math.round(load.seconds)],
    ['connections (autocannon, separate process)', load.connections],
    ['requests', load.requests],
    ['requests per second (mean)', Math.round(load.requestsPerSecond)],
    ['latency p50 / p99 / max (ms)', `${load.latencyP50} / ${load.latencyP99} / ${load.latencyMax}`],
    ['connection errors / timeouts', `${load.errors} / ${load.timeouts}`],
    ['5xx / non-2xx answers', `${load.fivexx} / ${load.non2xx}`],
    ['status codes', Object.entries(load.statusCounts).map(([c, n]) => `${c}: ${n}`).join(', ')],
    ['task runs started during the load', runs.restarts],
    ['task runs finished (by result)', Object.entries(runs.results).map(([r, n]) => `${r}: ${n}`).join(', ')],
    ['task logs deleted during the load', runs.logsDeleted],
    ['RSS kB: start / after warm-up (envelope) / end (median) / max after warm-up', `${first.rssKb} / ${warmRss} / ${endRss} / ${maxRss}`],
    ['RSS growth after warm-up', `${(rssGrowth * 100).toFixed(1)} %`],
    ['RSS trend after warm-up (least squares)', `${rssSlope.toFixed(1)} MB/min`],
    ['open fds: start / after warm-up (envelope) / end (median) / max after warm-up', `${first.fds} / ${warmFds} / ${endFds} / ${maxFds}`],
    ['RSS MB every 5 s', everyFive.map((x) => Math.round(x.rssKb / 1024)).join(' ')],
    ['open fds every 5 s', everyFive.map((x) => x.fds).join(' ')]
  ], [
    'Mix per connection, in a loop: GET tasks.json, GET taskLogs.json, POST objectSets, GET the set, PATCH it, GET objectSets.xml, DELETE it, GET service.json (3 writes in 8 requests), HTTP Basic, keep-alive.',
    'Meanwhile a list task and a copy task (40 objects with managed, external and redirect datastreams, overwrite on) are restarted whenever Idle and their finished logs deleted.',
    `"Flat": after a ${WARMUP_SECONDS} s warm-up, the median of the last 10 samples is less than 30 % above the highest sample of the 10 s after the warm-up (RSS breathes with garbage collection), and the descriptor count likewise stays within +10.`
  ])
})

/** Least-squares slope of `[ms, value]` points, in value per minute. */
function slopePerMinute(points: Array<[number, number]>): number {
  const n = points.length
  if (n < 2) return 0
  const mx = points.reduce((a, [x]) => a + x, 0) / n
  const my = points.reduce((a, [, y]) => a + y, 0) / n
  let num = 0
  let den = 0
  for (const [x, y] of points) {
    num += (x - mx) * (y - my)
    den += (x - mx) ** 2
  }
  return den === 0 ? 0 : (num / den) * 60_000
}
