/**
 * Reliability: password guessing (spec §6.3, §6.5).
 *
 * 1,000 wrong passwords for one account, alternating the login form and
 * HTTP Basic: the first 10 get 401, every later attempt — right password
 * included — gets 429 with `Retry-After` until the window has passed; then
 * the right password works again. Other accounts are unaffected throughout,
 * an unknown name is throttled exactly like a known one (no enumeration by
 * throttling), and a failed attempt for an unknown name takes as long as one
 * for a known name (no enumeration by timing).
 */
import t from 'tap'
import { performance } from 'node:perf_hooks'
import { startTestServer } from '../helpers/server.js'
import type { TestServer } from '../helpers/server.js'
import type { Reply } from '../helpers/http.js'
import { json, median, recordResult } from './helpers.js'

t.setTimeout(90_000)

const ATTEMPTS = 1000
const WINDOW_MS = 5000
const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' }
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function formAttempt(s: TestServer, name: string, password: string): Promise<Reply> {
  return s.req('POST', '/login', { headers: FORM, body: new URLSearchParams({ username: name, password }).toString() })
}

function basicAttempt(s: TestServer, name: string, password: string): Promise<Reply> {
  return s.as([name, password], 'GET', '/api/rest/users/current', { headers: { Accept: 'application/json' } })
}

/** Attempt `i`: even ones through the form, odd ones through Basic. */
function attempt(s: TestServer, name: string, i: number): Promise<Reply> {
  return i % 2 === 0 ? formAttempt(s, name, `wrong-${i}`) : basicAttempt(s, name, `wrong-${i}`)
}

async function createUser(s: TestServer, name: string, password: string): Promise<void> {
  const r = await s.admin('POST', '/api/rest/users', json({ user: { name, password, admin: false, enabled: true } }))
  if (r.status !== 201) throw new Error(`create ${name}: ${r.status}`)
}

interface Figures { [key: string]: number | string }
const figures: Figures = {}
const started = Date.now()

t.test('1,000 wrong passwords through login and Basic are throttled; the account recovers after the window', async (t) => {
  const s = await startTestServer(t, { loginThrottle: { windowMs: WINDOW_MS } })
  await createUser(s, 'alice', 'alice-secret')
  await createUser(s, 'bob', 'bob-secret')

  const statuses: number[] = []
  const retryAfter: number[] = []
  // Sequential up to the lock, so the count is exact; then 8 at a time.
  for (let i = 0; i < 12; i++) statuses.push((await attempt(s, 'alice', i)).status)
  const lockedAt = Date.now()
  const lockedPhase = performance.now()
  for (let i = 12; i < ATTEMPTS; i += 8) {
    const batch = await Promise.all(Array.from({ length: Math.min(8, ATTEMPTS - i) }, (_, k) => attempt(s, 'alice', i + k)))
    for (const r of batch) {
      statuses.push(r.status)
      if (r.status === 429) retryAfter.push(Number(r.headers['retry-after']))
    }
  }
  const lockedMs = performance.now() - lockedPhase
  t.ok(Date.now() - lockedAt < WINDOW_MS, 'the run finished inside the lock window (else the counts below mean nothing)')

  t.same(statuses.slice(0, 10), Array(10).fill(401), 'the first 10 wrong passwords get 401')
  const after = statuses.slice(10)
  t.equal(after.filter((x) => x === 429).length, ATTEMPTS - 10, 'every later attempt gets 429')
  t.ok(retryAfter.length >= ATTEMPTS - 12 && retryAfter.every((x) => Number.isInteger(x) && x >= 1 && x <= WINDOW_MS / 1000), 'each 429 has Retry-After in seconds, within the window')
  t.equal(statuses.filter((x) => x >= 500).length, 0, 'no 5xx')

  // Locked: the right password is refused as well, through both doors.
  const rightForm = await formAttempt(s, 'alice', 'alice-secret')
  const rightBasic = await basicAttempt(s, 'alice', 'alice-secret')
  t.equal(rightForm.status, 429, 'the right password on the form is refused while locked')
  t.equal(rightBasic.status, 429, 'the right password over Basic is refused while locked')
  t.match(rightForm.text, /Too many failed attempts/, 'the login page explains the lock')
  t.ok(Number(rightBasic.headers['retry-after']) >= 1, 'Retry-After on the Basic answer')

  // Other accounts are unaffected.
  t.equal((await formAttempt(s, 'bob', 'bob-secret')).status, 303, 'bob logs in through the form')
  t.equal((await basicAttempt(s, 'bob', 'bob-secret')).status, 200, 'bob authenticates over Basic')
  t.equal((await basicAttempt(s, 'admin', 'admin-pass')).status, 200, 'admin authenticates over Basic')

  // An unknown name is throttled exactly like a known one.
  const ghost: number[] = []
  for (let i = 0; i < 14; i++) ghost.push((await attempt(s, 'ghost', i)).status)
  t.same(ghost, [...Array(10).fill(401), ...Array(4).fill(429)], 'an unknown name: 10 × 401, then 429')

  // After the window, the right password works again (and the wrong one counts from zero).
  const wait = Number(rightBasic.headers['retry-after']) * 1000
  await sleep(wait + 250)
  const recovered = await basicAttempt(s, 'alice', 'alice-secret')
  t.equal(recovered.status, 200, 'after Retry-After the right password works over Basic')
  t.equal((await formAttempt(s, 'alice', 'alice-secret')).status, 303, 'and through the form')

  figures['wrong passwords sent (form + Basic, alternating)'] = ATTEMPTS
  figures['answered 401 (before the lock)'] = statuses.filter((x) => x === 401).length
  figures['answered 429 with Retry-After'] = after.filter((x) => x === 429).length
  figures['5xx answers'] = statuses.filter((x) => x >= 500).length
  figures['attempts per second while locked'] = Math.round((ATTEMPTS - 12) / (lockedMs / 1000))
  figures['lock window (ms, test setting; default 300000)'] = WINDOW_MS
  figures['waited for recovery (ms)'] = wait + 250
})

t.test('a failed login for an unknown name takes as long as one for a known name', async (t) => {
  // Throttling off (very high limit) so every attempt runs the password check.
  const s = await startTestServer(t, { loginThrottle: { maxFailures: 100_000 } })
  await createUser(s, 'carol', 'carol-secret')
  const ROUNDS = 30
  type Kind = 'basic' | 'form'
  const attempts: Record<Kind, (name: string, password: string) => Promise<Reply>> = { basic: (n, p) => basicAttempt(s, n, p), form: (n, p) => formAttempt(s, n, p) }
  const known: Record<Kind, number[]> = { basic: [], form: [] }
  const unknown: Record<Kind, number[]> = { basic: [], form: [] }
  const time = async (fn: () => Promise<Reply>, into: number[]) => {
    const t0 = performance.now()
    const r = await fn()
    into.push(performance.now() - t0)
    if (r.status !== 401) throw new Error(`expected 401, got ${r.status}`)
  }
  for (let i = 0; i < 3; i++) {
    await basicAttempt(s, 'carol', `warm-${i}`)
    await formAttempt(s, `nobody-warm-${i}`, 'x')
  }
  // Pairs, alternating which goes first, so that load from elsewhere (the
  // suite runs files in parallel) hits both sides alike; compare per pair.
  for (let i = 0; i < ROUNDS; i++) {
    for (const kind of ['basic', 'form'] as const) {
      const a = () => time(() => attempts[kind]('carol', `wrong-${i}`), known[kind])
      const b = () => time(() => attempts[kind](`nobody-${kind}-${i}`, `wrong-${i}`), unknown[kind])
      if (i % 2 === 0) { await a(); await b() } else { await b(); await a() }
    }
  }
  const stats = (kind: Kind) => {
    const differences = known[kind].map((k, i) => k - unknown[kind][i]!)
    const typical = median([...known[kind], ...unknown[kind]])
    return { known: median(known[kind]), unknown: median(unknown[kind]), difference: median(differences), typical }
  }
  // Tolerance: the median paired difference is at most 25 % of a typical
  // attempt. Skipping the hash for unknown names would make the difference
  // nearly the whole attempt (a scrypt hash is ~60 ms here, the rest ~1 ms).
  for (const kind of ['basic', 'form'] as const) {
    const m = stats(kind)
    t.ok(Math.abs(m.difference) <= 0.25 * m.typical, `${kind}: known ${m.known.toFixed(1)} ms vs unknown ${m.unknown.toFixed(1)} ms (median paired difference ${m.difference.toFixed(1)} ms)`)
    t.ok(m.unknown > 20, `${kind}: an unknown name does pay for a password hash`)
    figures[`median ms, ${kind === 'basic' ? 'Basic' : 'form'}: known name (wrong password) / unknown name`] = `${round(m.known)} / ${round(m.unknown)}`
    figures[`median paired difference, ${kind === 'basic' ? 'Basic' : 'form'} (ms; % of a typical attempt)`] = `${round(m.difference)} (${round(100 * Math.abs(m.difference) / m.typical)} %)`
  }
  figures['timing pairs per kind'] = ROUNDS
})

function round(x: number): number {
  return Math.round(x * 10) / 10
}

t.teardown(() => {
  recordResult('brute-force', 'Brute force and timing', t.passing(), started, Object.entries(figures), [
    'Throttle: 10 failed attempts per account (form and Basic together) lock the account; the test uses a 5 s window instead of the default 5 minutes so that recovery can be observed.',
    'Timing: 30 pairs (known name with a wrong password, unknown name) per door, order alternating; the median paired difference must be at most 25 % of a typical attempt (the unknown name runs a dummy scrypt hash).'
  ])
})
