/**
 * Reliability: protective headers on every class of response, and CSRF
 * refusal on every state-changing route (spec §1.4, §6.3, §6.6).
 *
 * Part 1 sends one request per response class (200 JSON/XML, HEAD, 201, 204,
 * 304, 4xx problems, 401, 429, 302 login redirect, 303 login/logout, static
 * JS, login page, UI page, task-log text) and checks `nosniff`, frame denial,
 * `Referrer-Policy` and the cache policy: `private, no-cache` + strong ETag on
 * successful reads, `no-store` on writes, errors and redirects (HTML pages
 * may use either).
 *
 * Part 2 drives every unsafe route (POST/PATCH/DELETE of every collection and
 * entity, the DuraCloud form look-ups, POST with `_method` and
 * `X-HTTP-Method-Override`, login and logout) with a session cookie: seven
 * kinds of cross-site or unproven request are refused with 403 and change
 * nothing; the same request with `X-Requested-With`, a same-origin `Origin`,
 * `Sec-Fetch-Site: same-origin` or a same-origin `Referer` succeeds.
 * Basic-authenticated requests are exempt.
 */
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { startTestServer, ADMIN } from '../helpers/server.js'
import type { TestServer } from '../helpers/server.js'
import type { Reply } from '../helpers/http.js'
import { formLogin, json, recordResult, waitFor } from './helpers.js'

t.setTimeout(90_000)

const EVIL = 'https://evil.example'
const READ_CACHE = 'private, no-cache'
const STRONG_ETAG = /^"[^"]+"$/

/** `page`: an HTML page may be revalidated (`read`) or not stored at all. */
type CachePolicy = 'read' | 'no-store' | 'page'

interface Check { label: string; reply: Reply; status: number; cache: CachePolicy }

/** A fake DuraStore so that the look-ups can succeed without leaving the machine. */
async function fakeDuraStore(t: Teardown): Promise<string> {
  const server = http.createServer((req, res) => {
    res.setHeader('Content-Type', 'application/xml')
    if (req.url?.startsWith('/durastore/stores')) {
      res.end('<storageProviderAccounts><storageAcct isPrimary="1"><id>0</id><storageProviderType>AMAZON_S3</storageProviderType></storageAcct></storageProviderAccounts>')
    } else if (req.url?.startsWith('/durastore/spaces')) {
      res.end('<spaces><space id="backups"/></spaces>')
    } else {
      res.statusCode = 404
      res.end()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/durastore`
}

interface Teardown { teardown(fn: () => unknown): void }

let storeCount = 0
async function newStore(s: TestServer): Promise<string> {
  const dir = path.join(s.storeRoot, `store-${++storeCount}`)
  mkdirSync(dir, { recursive: true })
  const r = await s.admin('POST', '/api/rest/objectStores', json({ objectStore: { name: `Store ${storeCount}`, type: 'filesystem', data: JSON.stringify({ path: dir }) } }))
  if (r.status !== 201) throw new Error(`store: ${r.status} ${r.text}`)
  return r.headers.location!
}

let setCount = 0
async function newSet(s: TestServer): Promise<string> {
  const r = await s.admin('POST', '/api/rest/objectSets', json({ objectSet: { name: `Set ${++setCount}`, type: 'pidList', data: 'demo:1' } }))
  if (r.status !== 201) throw new Error(`set: ${r.status} ${r.text}`)
  return r.headers.location!
}

let taskCount = 0
async function newTask(s: TestServer, storeUri: string, state = 'Idle'): Promise<string> {
  const r = await s.admin('POST', '/api/rest/tasks', json({ task: { name: `Task ${++taskCount}`, type: 'list', state, data: JSON.stringify({ setUri: `${s.api}/objectSets/1`, storeUri }) } }))
  if (r.status !== 201) throw new Error(`task: ${r.status} ${r.text}`)
  return r.headers.location!
}

let userCount = 0
async function newUser(s: TestServer): Promise<string> {
  const r = await s.admin('POST', '/api/rest/users', json({ user: { name: `user-${++userCount}`, password: 'pw-user', admin: false, enabled: true } }))
  if (r.status !== 201) throw new Error(`user: ${r.status} ${r.text}`)
  return r.headers.location!
}

/** A finished task log: run a list task over an empty store to completion. */
async function newTaskLog(s: TestServer, storeUri: string): Promise<string> {
  const task = await newTask(s, storeUri, 'Starting')
  return waitFor(async () => {
    const r = await s.admin('GET', '/api/rest/taskLogs', { headers: { Accept: 'application/json' } })
    const log = (r.json().taskLogs as Array<{ uri: string; taskUri: string; resultType: string }>).find((l) => l.taskUri === task && l.resultType !== 'Incomplete')
    if (log === undefined) return undefined
    const state = (await s.admin('GET', task, { headers: { Accept: 'application/json' } })).json().task.state
    return state === 'Idle' ? log.uri : undefined
  }, 15_000, 'a finished task log')
}

t.test('every response class carries the protective headers and the right cache policy', async (t) => {
  const started = Date.now()
  const s = await startTestServer(t, { loginThrottle: { maxFailures: 2, windowMs: 60_000 } })
  const storeUri = await newStore(s)
  const logUri = await newTaskLog(s, storeUri)
  const cookie = await formLogin(s.base, ...ADMIN)
  const xhr = { Cookie: cookie, 'X-Requested-With': 'XMLHttpRequest' }
  const checks: Check[] = []
  const add = (label: string, reply: Reply, status: number, cache: CachePolicy): void => { checks.push({ label, reply, status, cache }) }

  const listJson = await s.admin('GET', '/api/rest/tasks', { headers: { Accept: 'application/json' } })
  add('200 GET JSON', listJson, 200, 'read')
  add('200 GET XML (suffix)', await s.admin('GET', '/api/rest/objectSets.xml'), 200, 'read')
  add('200 GET vendor JSON', await s.admin('GET', '/api/rest/users/current', { headers: { Accept: 'application/vnd.fcrepo-cloudsync.user+json' } }), 200, 'read')
  add('200 GET by cookie', await s.req('GET', '/api/rest/objectStores.json', { headers: xhr }), 200, 'read')
  add('200 HEAD', await s.admin('HEAD', '/api/rest/tasks.json'), 200, 'read')
  add('200 GET open service', await s.req('GET', '/api/rest/service.json'), 200, 'read')
  add('200 GET task-log text (finished run)', await s.admin('GET', `${logUri.replace(/\.json$/, '')}/content`), 200, 'read')
  add('304 If-None-Match', await s.admin('GET', '/api/rest/tasks', { headers: { Accept: 'application/json', 'If-None-Match': String(listJson.headers.etag) } }), 304, 'read')
  add('201 POST', await s.admin('POST', '/api/rest/objectSets', json({ objectSet: { name: 'Created', type: 'pidList', data: 'demo:1' } })), 201, 'no-store')
  add('200 PATCH', await s.admin('PATCH', '/api/rest/objectSets/2', json({ objectSet: { data: 'demo:2' } })), 200, 'no-store')
  add('204 DELETE', await s.admin('DELETE', '/api/rest/objectSets/2'), 204, 'no-store')
  add('200 OPTIONS', await s.admin('OPTIONS', '/api/rest/tasks'), 200, 'no-store')
  add('409 POST open service (already initialized)', await s.req('POST', '/api/rest/service', json({ serviceInit: { initialAdminUsername: 'x', initialAdminPassword: 'y' } })), 409, 'no-store')
  add('400 malformed body', await s.admin('POST', '/api/rest/tasks', { headers: { 'Content-Type': 'application/json' }, body: '{' }), 400, 'no-store')
  add('401 no credentials (script)', await s.req('GET', '/api/rest/tasks'), 401, 'no-store')
  add('401 no credentials (XHR)', await s.req('GET', '/api/rest/tasks', { headers: { 'X-Requested-With': 'XMLHttpRequest' } }), 401, 'no-store')
  add('401 bad Basic', await s.as(['nobody', 'wrong'], 'GET', '/api/rest/tasks'), 401, 'no-store')
  add('403 CSRF', await s.req('DELETE', '/api/rest/tasks/1', { headers: { Cookie: cookie, Origin: EVIL } }), 403, 'no-store')
  add('404 GET unknown id', await s.admin('GET', '/api/rest/tasks/999999.json'), 404, 'no-store')
  add('404 GET unknown path', await s.admin('GET', '/api/rest/nothing'), 404, 'no-store')
  add('404 outside the API', await s.req('GET', '/no/such/page'), 404, 'no-store')
  add('405 wrong method', await s.admin('PUT', '/api/rest/tasks'), 405, 'no-store')
  add('406 not acceptable', await s.admin('GET', '/api/rest/tasks', { headers: { Accept: 'text/csv' } }), 406, 'no-store')
  add('409 conflict', await s.admin('DELETE', '/api/rest/users/1'), 409, 'no-store')
  add('413 too large', await s.admin('POST', '/api/rest/objectSets', { headers: { 'Content-Type': 'application/json' }, body: '"' + 'x'.repeat(300 * 1024) + '"' }), 413, 'no-store')
  add('415 unsupported type', await s.admin('POST', '/api/rest/objectSets', { headers: { 'Content-Type': 'text/plain' }, body: 'x' }), 415, 'no-store')
  add('302 login redirect (navigation)', await s.req('GET', '/api/rest/users.json', { headers: { Accept: 'text/html,*/*;q=0.8', 'Sec-Fetch-Mode': 'navigate' } }), 302, 'no-store')
  add('302 UI page without session', await s.req('GET', '/', { headers: { Accept: 'text/html' } }), 302, 'no-store')
  add('200 static JS', await s.req('GET', '/js/cloudsync-api.js'), 200, 'read')
  add('200 static JS (legacy name)', await s.req('GET', '/js/cloudsync-client.js'), 200, 'read')
  add('404 static file', await s.req('GET', '/css/missing.css'), 404, 'no-store')
  add('200 login page', await s.req('GET', '/login'), 200, 'page')
  add('200 UI page with session', await s.req('GET', '/', { headers: { Cookie: cookie, Accept: 'text/html' } }), 200, 'page')
  const form = (name: string, password: string) => ({ headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `username=${name}&password=${password}` })
  add('401 failed login page', await s.req('POST', '/login', form('victim', 'wrong')), 401, 'no-store')
  await s.req('POST', '/login', form('victim', 'wrong'))
  add('429 throttled login page', await s.req('POST', '/login', form('victim', 'wrong')), 429, 'no-store')
  add('429 throttled Basic', await s.as(['victim', 'wrong'], 'GET', '/api/rest/tasks'), 429, 'no-store')
  add('303 login', await s.req('POST', '/login', form(...ADMIN)), 303, 'no-store')
  add('303 logout', await s.req('POST', '/logout', { headers: { Cookie: await formLogin(s.base, ...ADMIN) } }), 303, 'no-store')
  add('403 cross-site login', await s.req('POST', '/login', { ...form(...ADMIN), headers: { ...form(...ADMIN).headers, Origin: EVIL } }), 403, 'no-store')

  await newUser(s)
  add('403 non-admin rule', await s.as([`user-${userCount}`, 'pw-user'], 'POST', '/api/rest/users', json({ user: { name: 'z', password: 'z', admin: false, enabled: true } })), 403, 'no-store')

  let failures = 0
  for (const { label, reply, status, cache } of checks) {
    const h = reply.headers
    const problems: string[] = []
    if (reply.status !== status) problems.push(`status ${reply.status}, expected ${status}`)
    if (h['x-content-type-options'] !== 'nosniff') problems.push(`X-Content-Type-Options ${h['x-content-type-options']}`)
    const frameDenied = h['x-frame-options'] === 'DENY' || /frame-ancestors 'none'/.test(String(h['content-security-policy'] ?? ''))
    if (!frameDenied || h['x-frame-options'] !== 'DENY') problems.push(`frame denial: X-Frame-Options ${h['x-frame-options']}, CSP ${h['content-security-policy']}`)
    if (h['referrer-policy'] !== 'same-origin') problems.push(`Referrer-Policy ${h['referrer-policy']}`)
    const policy = cache === 'page' ? (h['cache-control'] === 'no-store' ? 'no-store' : 'read') : cache
    if (policy === 'read') {
      if (h['cache-control'] !== READ_CACHE) problems.push(`Cache-Control ${h['cache-control']}, expected ${READ_CACHE}`)
      if (!STRONG_ETAG.test(String(h.etag ?? ''))) problems.push(`ETag ${h.etag}`)
      const vary = String(h.vary ?? '')
      if (!/Accept/.test(vary) || !/Authorization/.test(vary) || !/Cookie/.test(vary)) problems.push(`Vary ${h.vary}`)
    } else if (h['cache-control'] !== 'no-store') {
      problems.push(`Cache-Control ${h['cache-control']}, expected no-store`)
    }
    if (reply.status >= 400 && !label.includes('page') && !/problem\+json|problem\+xml|text\/plain/.test(String(h['content-type']))) {
      problems.push(`error without a problem document: ${h['content-type']}`)
    }
    if (problems.length > 0) failures++
    t.same(problems, [], label)
  }
  recordResult('headers', 'Security headers and cache policy', t.passing(), started, [
    ['response classes checked', checks.length],
    ['classes with a missing or wrong header', failures]
  ], [
    'Each class is one real request; checked: X-Content-Type-Options nosniff, X-Frame-Options DENY (with CSP frame-ancestors), Referrer-Policy same-origin, Cache-Control.',
    'Successful GET/HEAD (API, static JS, finished task-log text, 304): "private, no-cache" with a strong ETag and Vary: Accept, Authorization, Cookie; writes, errors and redirects: "no-store"; HTML pages: either of the two.'
  ])
})

/** One prepared unsafe request: the method and URL actually sent, override headers and body. */
interface Target { method: string; url: string; headers: Record<string, string>; contentType?: string; body?: string }

interface UnsafeRoute {
  label: string
  /** Expected status when the request is allowed. */
  ok: number
  /** A fresh target (a new entity when the request consumes one). */
  prepare(): Promise<Target>
}

t.test('cookie-authenticated unsafe requests need same-origin proof on every route', async (t) => {
  const started = Date.now()
  const s = await startTestServer(t)
  const duraUrl = await fakeDuraStore(t)
  const cookie = await formLogin(s.base, ...ADMIN)
  const origin = s.base
  const REFUSALS: Array<[string, Record<string, string>]> = [
    ['cross-site Origin', { Origin: EVIL }],
    ['Sec-Fetch-Site: cross-site', { 'Sec-Fetch-Site': 'cross-site' }],
    ['cross-site Referer', { Referer: `${EVIL}/page` }],
    ['Origin: null', { Origin: 'null' }],
    ['no proof at all', {}],
    ['X-Requested-With with a cross-site Origin', { 'X-Requested-With': 'XMLHttpRequest', Origin: EVIL }],
    ['X-Requested-With with Sec-Fetch-Site: same-site', { 'X-Requested-With': 'XMLHttpRequest', 'Sec-Fetch-Site': 'same-site' }]
  ]
  const PROOFS: Array<[string, Record<string, string>]> = [
    ['X-Requested-With', { 'X-Requested-With': 'XMLHttpRequest' }],
    ['same-origin Origin', { Origin: origin }],
    ['Sec-Fetch-Site: same-origin', { 'Sec-Fetch-Site': 'same-origin' }],
    ['same-origin Referer', { Referer: `${origin}/` }]
  ]
  const send = (target: Target, extra: Record<string, string>) => s.req(target.method, target.url, {
    headers: { Accept: 'application/json', Cookie: cookie, ...target.headers, ...(target.contentType === undefined ? {} : { 'Content-Type': target.contentType }), ...extra },
    ...(target.body === undefined ? {} : { body: target.body })
  })
  const snapshot = async (uri: string) => (await s.admin('GET', uri, { headers: { Accept: 'application/json' } })).text

  const storeUri = await newStore(s)
  const routes: UnsafeRoute[] = []
  const entityRoutes: Array<{ label: string; method: 'PATCH' | 'DELETE'; ok: number; create(): Promise<string>; body?: unknown }> = [
    { label: 'users/{id}', method: 'PATCH', ok: 200, create: () => newUser(s), body: { user: { enabled: 'false' } } },
    { label: 'users/{id}', method: 'DELETE', ok: 204, create: () => newUser(s) },
    { label: 'tasks/{id}', method: 'PATCH', ok: 200, create: () => newTask(s, storeUri), body: { task: { schedule: 'nightly' } } },
    { label: 'tasks/{id}', method: 'DELETE', ok: 204, create: () => newTask(s, storeUri) },
    { label: 'objectSets/{id}', method: 'PATCH', ok: 200, create: () => newSet(s), body: { objectSet: { data: 'demo:9' } } },
    { label: 'objectSets/{id}', method: 'DELETE', ok: 204, create: () => newSet(s) },
    { label: 'objectStores/{id}', method: 'DELETE', ok: 204, create: () => newStore(s) },
    { label: 'taskLogs/{id}', method: 'DELETE', ok: 204, create: () => newTaskLog(s, storeUri) }
  ]
  for (const via of ['direct', '_method', 'header'] as const) {
    for (const r of entityRoutes) {
      routes.push({
        label: `${r.method} ${r.label}${via === 'direct' ? '' : via === '_method' ? ' as POST ?_method' : ' as POST + X-HTTP-Method-Override'}`,
        ok: r.ok,
        prepare: async (): Promise<Target> => {
          const uri = await r.create()
          const body: Partial<Target> = r.body === undefined ? {} : { contentType: 'application/json', body: JSON.stringify(r.body) }
          if (via === 'direct') return { method: r.method, url: uri, headers: {}, ...body }
          if (via === '_method') return { method: 'POST', url: `${uri}?_method=${r.method}`, headers: {}, ...body }
          return { method: 'POST', url: uri, headers: { 'X-HTTP-Method-Override': r.method }, ...body }
        }
      })
    }
  }
  const post = (label: string, url: string, ok: number, body: () => unknown, form = false): UnsafeRoute => ({
    label,
    ok,
    prepare: async () => form
      ? { method: 'POST', url, headers: {}, contentType: 'application/x-www-form-urlencoded', body: new URLSearchParams(body() as Record<string, string>).toString() }
      : { method: 'POST', url, headers: {}, contentType: 'application/json', body: JSON.stringify(body()) }
  })
  routes.push(
    post('POST users', '/api/rest/users', 201, () => ({ user: { name: `posted-${++userCount}`, password: 'pw', admin: false, enabled: true } })),
    post('POST tasks', '/api/rest/tasks', 201, () => ({ task: { name: `Posted task ${++taskCount}`, type: 'list', state: 'Idle', data: JSON.stringify({ setUri: 'objectSets/1', storeUri }) } })),
    post('POST objectSets', '/api/rest/objectSets', 201, () => ({ objectSet: { name: `Posted set ${++setCount}`, type: 'pidPattern', data: '*' } })),
    post('POST objectStores', '/api/rest/objectStores', 201, () => ({ objectStore: { name: `Posted store ${++storeCount}`, type: 'filesystem', data: JSON.stringify({ path: path.join(s.storeRoot, `posted-${storeCount}`) }) } })),
    post('POST duracloud/providerAccounts (form)', '/api/rest/duracloud/providerAccounts', 200, () => ({ url: duraUrl, username: 'u', password: 'p' }), true),
    post('POST duracloud/spaces (form)', '/api/rest/duracloud/spaces', 200, () => ({ url: duraUrl, username: 'u', password: 'p', providerAccountId: '0' }), true)
  )

  let refused = 0
  let allowed = 0
  const unexpected: string[] = []
  for (const route of routes) {
    // One target serves every refusal: nothing may change.
    const target = await route.prepare()
    const entity = target.url.match(/^(.*\/[0-9]+)(\?.*)?$/)?.[1]
    const collection = entity === undefined && !target.url.includes('duracloud') ? target.url : undefined
    const before = await snapshot(entity ?? collection ?? '/api/rest/service')
    for (const [name, headers] of REFUSALS) {
      const r = await send(target, headers)
      if (r.status === 403 && r.headers['cache-control'] === 'no-store') refused++
      else unexpected.push(`${route.label} with ${name}: ${r.status}`)
    }
    t.equal(await snapshot(entity ?? collection ?? '/api/rest/service'), before, `${route.label}: the refused requests changed nothing`)
    for (const [name, headers] of PROOFS) {
      const r = await send(name === PROOFS[0]![0] ? target : await route.prepare(), headers)
      if (r.status === route.ok) allowed++
      else unexpected.push(`${route.label} with ${name}: ${r.status} ${r.text.slice(0, 160)}`)
    }
  }

  // Login and logout (spec §6.3): cross-site refused; scripts and same-origin pages allowed.
  const loginForm = { 'Content-Type': 'application/x-www-form-urlencoded' }
  const loginBody = `username=${ADMIN[0]}&password=${ADMIN[1]}`
  for (const [name, headers] of REFUSALS.slice(0, 4)) {
    for (const [what, r] of [
      ['login', await s.req('POST', '/login', { headers: { ...loginForm, ...headers }, body: loginBody })],
      ['logout', await s.req('POST', '/logout', { headers: { Cookie: cookie, ...headers } })]
    ] as const) {
      if (r.status === 403) refused++
      else unexpected.push(`POST /${what} with ${name}: ${r.status}`)
    }
  }
  t.equal((await s.req('GET', '/api/rest/users/current', { headers: { Cookie: cookie, 'X-Requested-With': 'XMLHttpRequest' } })).status, 200, 'the refused logouts left the session alive')
  for (const [name, headers] of [['no headers (a script)', {}], ...PROOFS.slice(1)] as Array<[string, Record<string, string>]>) {
    const r = await s.req('POST', '/login', { headers: { ...loginForm, ...headers }, body: loginBody })
    if (r.status === 303) allowed++
    else unexpected.push(`POST /login with ${name}: ${r.status}`)
  }
  t.equal((await s.req('POST', '/logout', { headers: { Cookie: cookie, Origin: origin } })).status, 303, 'a same-origin logout works')
  // HTTP Basic is exempt: a forged cross-site request cannot carry the credentials.
  t.equal((await s.admin('POST', '/api/rest/objectSets', json({ objectSet: { name: 'via Basic', type: 'pidList', data: 'a:1' } }, { Origin: EVIL }))).status, 201, 'Basic-authenticated writes are exempt')

  t.same(unexpected, [], 'every cross-site or unproven write refused, every proven one allowed')
  t.equal(refused, routes.length * REFUSALS.length + 8, 'refusal count')
  t.equal(allowed, routes.length * PROOFS.length + PROOFS.length, 'allowed count')
  recordResult('csrf', 'Cross-site request forgery', t.passing(), started, [
    ['unsafe API routes (incl. override variants)', routes.length],
    ['cross-site / unproven requests refused with 403', refused],
    ['same-origin-proven requests allowed', allowed],
    ['unexpected answers', unexpected.length]
  ], [
    `Refused kinds: ${REFUSALS.map(([n]) => n).join('; ')}; each refusal was checked to change nothing.`,
    `Proofs accepted: ${PROOFS.map(([n]) => n).join('; ')}; each consumed a fresh entity.`,
    'Routes: PATCH/DELETE of users, tasks and object sets, DELETE of object stores and task logs (each also as POST with ?_method= and with X-HTTP-Method-Override), POST of users, tasks, object sets, object stores and both DuraCloud form look-ups (against a local fake DuraStore), plus POST /login and /logout.'
  ])
})
