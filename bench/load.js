/**
 * One measurement, run in its own process so the load generator never
 * shares an event loop with the server it measures:
 *
 *   node bench/load.js '<json spec>'
 *
 * spec: { url, method?, headers?, body?, connections?, warmupSeconds?,
 *         durationSeconds?, pid?, expectStatus? }
 *
 * Warms up, reads the server's CPU time from /proc/<pid>/stat, loads it for
 * the measured window, reads the CPU time again and prints one JSON line:
 * { requests, seconds, rps, p50, p99, cpuUsPerRequest (user + system),
 * userUsPerRequest, systemUsPerRequest, loaderUsPerRequest (this process),
 * unexpected, errors, timeouts, statusCodes }.
 */
import { readFileSync } from 'node:fs'
import autocannon from 'autocannon'

const spec = JSON.parse(process.argv[2] ?? '{}')
if (typeof spec.url !== 'string') {
  console.error('usage: node bench/load.js \'{"url":"http://127.0.0.1:8080/…","pid":1234}\'')
  process.exit(2)
}
const connections = spec.connections ?? 32
const warmupSeconds = spec.warmupSeconds ?? 2
const durationSeconds = spec.durationSeconds ?? 9
// A hung server must not hang the harness: give up well after the planned time.
setTimeout(() => {
  console.error('load: giving up (time limit)')
  process.exit(3)
}, (warmupSeconds + durationSeconds) * 1000 + 45_000).unref()

// utime + stime are fields 14 and 15 of /proc/<pid>/stat, counted after the
// parenthesised command name (which may itself contain spaces).
// USER_HZ: the unit of those fields, 100 on every Linux architecture Node supports.
const TICKS_PER_SECOND = 100
function cpuTimes(pid) {
  if (pid === undefined) return undefined
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return { user: (Number(fields[11]) * 1e6) / TICKS_PER_SECOND, system: (Number(fields[12]) * 1e6) / TICKS_PER_SECOND }
  } catch {
    return undefined
  }
}

function cpuMicros(pid) {
  const t = cpuTimes(pid)
  return t === undefined ? undefined : t.user + t.system
}

function run(seconds) {
  return new Promise((resolve, reject) => {
    autocannon({
      url: spec.url,
      method: spec.method ?? 'GET',
      headers: spec.headers ?? {},
      ...(spec.body === undefined ? {} : { body: spec.body }),
      connections,
      duration: seconds,
      // Generous: with the Basic cache off, a queued request waits seconds for its scrypt turn.
      timeout: 30
    }, (err, result) => (err ? reject(err) : resolve(result)))
  })
}

function unexpectedOf(result) {
  const expected = String(spec.expectStatus ?? 200)
  let count = 0
  for (const [status, { count: n }] of Object.entries(result.statusCodeStats ?? {})) if (status !== expected) count += n
  return count
}

/**
 * Wait until the server has finished the requests the warm-up left queued
 * (a slow server may still be working on them): at most ~20 s.
 */
async function settle() {
  let last = cpuMicros(spec.pid)
  for (let i = 0; i < 80 && last !== undefined; i++) {
    await new Promise((resolve) => setTimeout(resolve, 250))
    const now = cpuMicros(spec.pid)
    if (now === undefined || now - last < 25_000) return
    last = now
  }
}

if (warmupSeconds > 0) {
  await run(warmupSeconds)
  await settle()
}
const cpuBefore = cpuTimes(spec.pid)
const loaderBefore = process.cpuUsage()
const started = process.hrtime.bigint()
const result = await run(durationSeconds)
const seconds = typeof result.duration === 'number' && result.duration > 0 ? result.duration : Number(process.hrtime.bigint() - started) / 1e9
const cpuAfter = cpuTimes(spec.pid)
const loader = process.cpuUsage(loaderBefore)
const perRequest = (field) => (cpuBefore === undefined || cpuAfter === undefined || requests === 0 ? null : (cpuAfter[field] - cpuBefore[field]) / requests)
const requests = result.requests.total
const statusCodes = {}
for (const [status, { count }] of Object.entries(result.statusCodeStats ?? {})) statusCodes[status] = count

console.log(JSON.stringify({
  requests,
  seconds: Number(seconds.toFixed(3)),
  rps: requests / seconds,
  p50: result.latency.p50,
  p99: result.latency.p99,
  cpuUsPerRequest: perRequest('user') === null ? null : perRequest('user') + perRequest('system'),
  userUsPerRequest: perRequest('user'),
  systemUsPerRequest: perRequest('system'),
  loaderUsPerRequest: requests === 0 ? null : (loader.user + loader.system) / requests,
  unexpected: unexpectedOf(result),
  errors: result.errors,
  timeouts: result.timeouts,
  statusCodes
}))
