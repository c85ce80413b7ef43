import t from 'tap'
import { chain, serve as serveOn } from './helpers/pieces.js'
import type { Teardown } from './helpers/pieces.js'
import http from 'node:http'
import { randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto'
import { promisify } from 'node:util'
import connect from 'connect'
import { authenticate, isBrowserNavigation, LoginThrottle } from '../src/middleware/authenticate.js'
import { session, MemoryStore, newSessionId } from '../src/middleware/session.js'
import { contextOf } from '../src/middleware/context.js'
import type { AuthUser, Middleware } from '../src/middleware/context.js'

// ---- a tiny user directory with real (cheap) scrypt hashes ----

const scrypt = promisify(scryptCb) as (password: string, salt: Buffer, keylen: number, options: { N: number }) => Promise<Buffer>
const COST = { N: 1024 }

interface StoredUser { id: number; name: string; enabled: boolean; salt: Buffer; hash: Buffer }

class Directory {
  readonly users = new Map<number, StoredUser>()
  verifies = 0
  lookups = 0
  readonly dummySalt = randomBytes(16)

  async add(id: number, name: string, password: string): Promise<void> {
    const salt = randomBytes(16)
    this.users.set(id, { id, name, enabled: true, salt, hash: await scrypt(password, salt, 32, COST) })
  }

  async setPassword(id: number, password: string): Promise<void> {
    const user = this.users.get(id)!
    user.hash = await scrypt(password, user.salt, 32, COST)
  }

  verify = async (name: string, password: string): Promise<AuthUser | undefined> => {
    this.verifies++
    const user = [...this.users.values()].find((u) => u.name === name)
    // Unknown names hash too, so they take as long as known ones.
    const hash = await scrypt(password, user?.salt ?? this.dummySalt, 32, COST)
    if (user === undefined || !timingSafeEqual(hash, user.hash)) return undefined
    return { id: user.id, name: user.name, enabled: user.enabled }
  }

  lookup = async (id: string | number): Promise<AuthUser | undefined> => {
    this.lookups++
    const user = this.users.get(Number(id))
    return user === undefined ? undefined : { id: user.id, name: user.name, enabled: user.enabled }
  }
}

async function directory(): Promise<Directory> {
  const dir = new Directory()
  await dir.add(1, 'alice', 'alice-pw')
  await dir.add(2, 'bob', 'bob-pw')
  return dir
}

// ---- harness ----

// Big enough to let a 64 KiB Authorization header reach the middleware.
const serve = (tt: Teardown, listener: http.RequestListener): Promise<number> => serveOn(tt, listener, { maxHeaderSize: 256 * 1024 })

interface Reply { status: number; headers: http.IncomingHttpHeaders; body: string }

/** Reports who the request was authenticated as. */
const whoami: Middleware = (req, res) => {
  const ctx = contextOf(req)
  res.setHeader('Content-Type', 'application/json')
  res.end(JSON.stringify({ user: ctx.user?.name ?? null, scheme: ctx.authScheme ?? null, data: ctx.session?.record.data ?? null }))
}

function request(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
    })
    req.on('error', reject)
    req.end()
  })
}

const basic = (name: string, password: string): string => 'Basic ' + Buffer.from(`${name}:${password}`).toString('base64')
const rawBasic = (decoded: string): string => 'Basic ' + Buffer.from(decoded, 'latin1').toString('base64')
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const CHALLENGE = 'Basic realm="CloudSync", charset="UTF-8"'
const JSON_ACCEPT = { Accept: 'application/json' }

/** A logged-in session for `userId` in `store`, as the cookie to send. */
async function loggedIn(store: MemoryStore, userId: number): Promise<string> {
  const id = newSessionId()
  const now = Date.now()
  await store.set(id, { userId, createdAt: now, lastSeenAt: now, data: {} }, 60_000)
  return `cloudsync.sid=${id}`
}

t.test('HTTP Basic: the right password authenticates the request', async (t) => {
  const dir = await directory()
  const port = await serve(t, chain(authenticate({ verify: dir.verify, lookup: dir.lookup }), whoami))
  const r = await request(port, 'GET', '/api/rest/users', { Authorization: basic('alice', 'alice-pw') })
  t.equal(r.status, 200)
  t.same(JSON.parse(r.body), { user: 'alice', scheme: 'basic', data: null })
})

t.test('HTTP Basic: wrong password, unknown user and disabled user get 401 with the challenge', async (t) => {
  const dir = await directory()
  dir.users.get(2)!.enabled = false
  const port = await serve(t, chain(authenticate({ verify: dir.verify, lookup: dir.lookup }), whoami))
  for (const [name, password] of [['alice', 'Guess-4711'], ['mallory', 'Guess-0815'], ['bob', 'bob-pw']] as const) {
    const r = await request(port, 'GET', '/api/rest/users', { Authorization: basic(name, password), ...JSON_ACCEPT })
    t.equal(r.status, 401, `${name}/${password}`)
    t.equal(r.headers['www-authenticate'], CHALLENGE)
    t.equal(JSON.parse(r.body).status, 401)
    t.notMatch(r.body, password, 'the password is never echoed')
  }
  const html = await request(port, 'GET', '/', { Authorization: basic('alice', 'wrong'), Accept: 'text/html', 'Sec-Fetch-Mode': 'navigate' })
  t.equal(html.status, 401, 'bad credentials are a 401 even for a browser navigation')
})

t.test('malformed Authorization headers are a 401, never a throw, and never reach verify', async (t) => {
  const dir = await directory()
  const port = await serve(t, chain(authenticate({ verify: dir.verify, lookup: dir.lookup }), whoami))
  const hostile: Record<string, string> = {
    'no colon': rawBasic('alicealice-pw'),
    'bad base64': 'Basic !!!not*base64!!!',
    'only the scheme': 'Basic',
    'scheme and spaces': 'Basic    ',
    'NUL in the name': rawBasic('ali\u0000ce:alice-pw'),
    'newline in the password': rawBasic('alice:alice\npw'),
    'DEL in the password': rawBasic('alice:alice-pw\u007f'),
    'empty name': rawBasic(':alice-pw'),
    '64 KiB header': 'Basic ' + 'QUFB'.repeat(16 * 1024),
    '64 KiB of padding': 'Basic YWxpY2U6YWxpY2UtcHc' + '='.repeat(64 * 1024),
    'another scheme': 'Bearer abc.def.ghi',
    'garbage': '\u00ff\u00fe'
  }
  for (const [what, header] of Object.entries(hostile)) {
    const started = Date.now()
    const r = await request(port, 'GET', '/api/rest/users', { Authorization: header, ...JSON_ACCEPT })
    t.equal(r.status, 401, what)
    t.equal(r.headers['www-authenticate'], CHALLENGE, what)
    t.ok(Date.now() - started < 2000, `${what}: answered promptly`)
  }
  t.equal(dir.verifies, 0, 'verify was never called with junk')
})

t.test('open routes pass untouched, whatever credentials they carry', async (t) => {
  const dir = await directory()
  const port = await serve(t, chain(authenticate({ verify: dir.verify, lookup: dir.lookup, isOpen: (req) => req.url!.startsWith('/login') }), whoami))
  const r = await request(port, 'GET', '/login', { Authorization: rawBasic('no colon') })
  t.equal(r.status, 200)
  t.same(JSON.parse(r.body), { user: null, scheme: null, data: null })
  t.equal((await request(port, 'GET', '/login', { Authorization: basic('alice', 'alice-pw') })).body, JSON.stringify({ user: null, scheme: null, data: null }), 'credentials are ignored on open routes')
  t.equal(dir.verifies, 0)
})

t.test('the realm option names the Basic realm', async (t) => {
  const dir = await directory()
  const port = await serve(t, chain(authenticate({ verify: dir.verify, lookup: dir.lookup, realm: 'Archive' }), whoami))
  t.equal((await request(port, 'GET', '/x')).headers['www-authenticate'], 'Basic realm="Archive", charset="UTF-8"')
})

t.test('a session authenticates, with the user looked up on every request', async (t) => {
  const dir = await directory()
  const store = new MemoryStore()
  const port = await serve(t, chain(session({ store }), authenticate({ verify: dir.verify, lookup: dir.lookup }), whoami))
  const cookie = await loggedIn(store, 1)
  for (let i = 0; i < 3; i++) {
    const r = await request(port, 'GET', '/api/rest/tasks', { Cookie: cookie })
    t.same(JSON.parse(r.body), { user: 'alice', scheme: 'session', data: {} })
  }
  t.equal(dir.lookups, 3, 'looked up each time')
  t.equal(dir.verifies, 0, 'no password hashing for sessions')
})

t.test('Basic takes precedence over the session', async (t) => {
  const dir = await directory()
  const store = new MemoryStore()
  const port = await serve(t, chain(session({ store }), authenticate({ verify: dir.verify, lookup: dir.lookup }), whoami))
  const bobsCookie = await loggedIn(store, 2)
  const r = await request(port, 'GET', '/x', { Cookie: bobsCookie, Authorization: basic('alice', 'alice-pw') })
  t.same(JSON.parse(r.body).user, 'alice')
  t.same(JSON.parse(r.body).scheme, 'basic')
  const bad = await request(port, 'GET', '/x', { Cookie: bobsCookie, Authorization: basic('alice', 'wrong') })
  t.equal(bad.status, 401, 'bad Basic credentials do not fall back to the session')
})

t.test('a disabled or deleted user loses access on the very next request (D16)', async (t) => {
  const dir = await directory()
  const store = new MemoryStore()
  const port = await serve(t, chain(session({ store }), authenticate({ verify: dir.verify, lookup: dir.lookup }), whoami))
  const alice = await loggedIn(store, 1)
  const bob = await loggedIn(store, 2)
  t.equal((await request(port, 'GET', '/x', { Cookie: alice })).status, 200)
  t.equal((await request(port, 'GET', '/x', { Authorization: basic('alice', 'alice-pw') })).status, 200, 'Basic verification now cached')

  dir.users.get(1)!.enabled = false
  const viaSession = await request(port, 'GET', '/x', { Cookie: alice, ...JSON_ACCEPT })
  t.equal(viaSession.status, 401, 'disabled: the session no longer works')
  t.equal(viaSession.headers['www-authenticate'], CHALLENGE)
  t.equal((await request(port, 'GET', '/x', { Authorization: basic('alice', 'alice-pw') })).status, 401, 'disabled: the cached Basic verification no longer works')

  dir.users.get(1)!.enabled = true
  t.equal((await request(port, 'GET', '/x', { Cookie: alice })).status, 401, 're-enabling does not revive the old session')

  dir.users.delete(2)
  const nav = await request(port, 'GET', '/ui', { Cookie: bob, Accept: 'text/html' })
  t.equal(nav.status, 302, 'deleted: a browser is sent to the login page')
  t.equal(nav.headers.location, '/login')
})

t.test('unauthenticated requests: redirect for navigations, 401 with or without the challenge (spec §6.4)', async (t) => {
  const dir = await directory()
  const store = new MemoryStore()
  const port = await serve(t, chain(session({ store }), authenticate({ verify: dir.verify, lookup: dir.lookup, isOpen: (req) => req.url === '/whoami' }), whoami))

  const nav = await request(port, 'GET', '/api/rest/users.json?x=1', { 'Sec-Fetch-Mode': 'navigate', Accept: 'application/json' })
  t.equal(nav.status, 302, 'Sec-Fetch-Mode: navigate')
  t.equal(nav.headers.location, '/login')
  t.equal(nav.headers['cache-control'], 'no-store')
  const cookie = nav.headers['set-cookie']![0]!.split(';')[0]!
  const remembered = await request(port, 'GET', '/whoami', { Cookie: cookie })
  t.same(JSON.parse(remembered.body).data, { returnTo: '/api/rest/users.json?x=1' }, 'the requested URL is remembered server-side')

  const legacyNav = await request(port, 'GET', '/', { Accept: 'text/html,application/xhtml+xml,*/*;q=0.8' })
  t.equal(legacyNav.status, 302, 'no Sec-Fetch-Mode: a GET accepting text/html is a navigation')
  t.equal((await request(port, 'HEAD', '/', { Accept: 'text/html' })).status, 302, 'HEAD too')

  const ajax = await request(port, 'GET', '/api/rest/users', { Accept: 'text/html', 'X-Requested-With': 'XMLHttpRequest' })
  t.equal(ajax.status, 401, 'X-Requested-With: not a navigation')
  t.equal(ajax.headers['www-authenticate'], undefined, 'and no challenge, so no browser password dialog')
  t.equal(ajax.headers['set-cookie'], undefined, 'no session is created for it')

  const fetchCors = await request(port, 'GET', '/api/rest/users', { Accept: 'text/html', 'Sec-Fetch-Mode': 'cors' })
  t.equal(fetchCors.status, 401, 'Sec-Fetch-Mode other than navigate wins over Accept')
  t.equal(fetchCors.headers['www-authenticate'], CHALLENGE)

  for (const [what, method, headers] of [
    ['curl', 'GET', { Accept: '*/*' }],
    ['no Accept', 'GET', {}],
    ['text/html refused with q=0', 'GET', { Accept: 'text/html;q=0, application/json' }],
    ['a POST accepting html', 'POST', { Accept: 'text/html' }]
  ] as const) {
    const r = await request(port, method, '/api/rest/users', headers)
    t.equal(r.status, 401, what)
    t.equal(r.headers['www-authenticate'], CHALLENGE, what)
    t.equal(r.headers['set-cookie'], undefined, `${what}: no session created`)
  }
  t.equal(store.size, 3, 'only the three navigations created sessions')

  // A forged cross-site form post is a navigation without the victim's (SameSite=Lax) cookie.
  for (const [what, method, headers] of [
    ['a POST navigation', 'POST', { 'Sec-Fetch-Mode': 'navigate', 'Sec-Fetch-Site': 'same-origin' }],
    ['a cross-site GET navigation', 'GET', { 'Sec-Fetch-Mode': 'navigate', 'Sec-Fetch-Site': 'cross-site' }]
  ] as const) {
    const r = await request(port, method, '/api/rest/objectSets/1?_method=DELETE', headers)
    t.equal(r.status, 302, `${what} still goes to the login page`)
    t.equal(r.headers['set-cookie'], undefined, `${what} starts no session that would replace the victim's cookie`)
  }
  t.equal(store.size, 3, 'no session was created for them')
})

t.test('without a session piece the URL to return to travels in the query', async (t) => {
  const dir = await directory()
  const port = await serve(t, chain(authenticate({ verify: dir.verify, lookup: dir.lookup }), whoami))
  const r = await request(port, 'GET', '/api/rest/users.json?a=1&b=2', { Accept: 'text/html' })
  t.equal(r.status, 302)
  t.equal(r.headers.location, '/login?returnTo=' + encodeURIComponent('/api/rest/users.json?a=1&b=2'))
  const long = await request(port, 'GET', '/x?' + 'a'.repeat(5000), { Accept: 'text/html' })
  t.equal(long.headers.location, '/login', 'an absurdly long URL is not remembered')
})

t.test('mounted under a prefix: the login location and remembered URL include the mount', async (t) => {
  const dir = await directory()
  const inner = connect()
  inner.use(authenticate({ verify: dir.verify, lookup: dir.lookup }))
  inner.use(whoami)
  const custom = connect()
  custom.use(authenticate({ verify: dir.verify, lookup: dir.lookup, loginPath: '/signin?from=api' }))
  const fn = connect()
  fn.use(authenticate({ verify: dir.verify, lookup: dir.lookup, loginPath: (req) => `https://sso.example.org/start?for=${encodeURIComponent(req.url!)}` }))
  const outer = connect()
  outer.use('/cloudsync', inner)
  outer.use('/custom', custom)
  outer.use('/fn', fn)
  const port = await serve(t, outer)
  const r = await request(port, 'GET', '/cloudsync/api/rest/users.json', { Accept: 'text/html' })
  t.equal(r.headers.location, '/cloudsync/login?returnTo=' + encodeURIComponent('/cloudsync/api/rest/users.json'))
  t.equal((await request(port, 'GET', '/custom/ui', { Accept: 'text/html' })).headers.location, '/custom/signin?from=api&returnTo=%2Fcustom%2Fui')
  t.equal((await request(port, 'GET', '/fn/ui', { Accept: 'text/html' })).headers.location, 'https://sso.example.org/start?for=%2Fui&returnTo=%2Ffn%2Fui')
})

t.test('failed Basic attempts are throttled per account: the 11th gets 429 with Retry-After', async (t) => {
  const dir = await directory()
  const throttle = new LoginThrottle({ windowMs: 600 })
  const port = await serve(t, chain(authenticate({ verify: dir.verify, lookup: dir.lookup, throttle }), whoami))
  for (let i = 1; i <= 10; i++) {
    t.equal((await request(port, 'GET', '/x', { Authorization: basic('alice', `guess-${i}`) })).status, 401, `attempt ${i}`)
  }
  const blocked = await request(port, 'GET', '/x', { Authorization: basic('alice', 'alice-pw'), ...JSON_ACCEPT })
  t.equal(blocked.status, 429, 'even the right password is refused now')
  t.equal(blocked.headers['retry-after'], '1')
  t.match(JSON.parse(blocked.body).detail, /wait 1 seconds/)
  t.equal((await request(port, 'GET', '/x', { Authorization: basic('bob', 'bob-pw') })).status, 200, 'bob is unaffected')
  await sleep(700)
  t.equal((await request(port, 'GET', '/x', { Authorization: basic('alice', 'alice-pw') })).status, 200, 'after the window the right password works')
})

t.test('the verification cache skips the password hash but not the user lookup', async (t) => {
  const dir = await directory()
  const auth = authenticate({ verify: dir.verify, lookup: dir.lookup })
  const port = await serve(t, chain(auth, whoami))
  const alice = { Authorization: basic('alice', 'alice-pw') }
  for (let i = 0; i < 5; i++) t.equal((await request(port, 'GET', '/x', alice)).status, 200)
  t.equal(dir.verifies, 1, 'hashed once')
  t.equal(dir.lookups, 4, 'looked up on every cached hit')

  await dir.setPassword(1, 'new-pw')
  t.equal((await request(port, 'GET', '/x', alice)).status, 200, 'until invalidated, the old password is still cached')
  auth.invalidate('alice')
  t.equal((await request(port, 'GET', '/x', alice)).status, 401, 'invalidate(name) forgets it')
  t.equal((await request(port, 'GET', '/x', { Authorization: basic('alice', 'new-pw') })).status, 200)
  t.equal((await request(port, 'GET', '/x', { Authorization: basic('bob', 'bob-pw') })).status, 200)
  const before = dir.verifies
  auth.invalidate()
  await request(port, 'GET', '/x', { Authorization: basic('alice', 'new-pw') })
  await request(port, 'GET', '/x', { Authorization: basic('bob', 'bob-pw') })
  t.equal(dir.verifies, before + 2, 'invalidate() forgets everyone')
  t.throws(() => auth.invalidate(42 as unknown as string), TypeError)
})

t.test('a renamed user\'s cached credentials stop working at once', async (t) => {
  const dir = await directory()
  const port = await serve(t, chain(authenticate({ verify: dir.verify, lookup: dir.lookup }), whoami))
  t.equal((await request(port, 'GET', '/x', { Authorization: basic('alice', 'alice-pw') })).status, 200)
  dir.users.get(1)!.name = 'alicia'
  t.equal((await request(port, 'GET', '/x', { Authorization: basic('alice', 'alice-pw') })).status, 401)
  t.equal((await request(port, 'GET', '/x', { Authorization: basic('alicia', 'alice-pw') })).status, 200)
})

t.test('cache options: disabled, bounded, expiring', async (t) => {
  const dir = await directory()
  const port = await serve(t, chain(authenticate({ verify: dir.verify, lookup: dir.lookup, cache: false }), whoami))
  for (let i = 0; i < 3; i++) await request(port, 'GET', '/x', { Authorization: basic('alice', 'alice-pw') })
  t.equal(dir.verifies, 3, 'cache: false hashes every time')

  const dir2 = await directory()
  const port2 = await serve(t, chain(authenticate({ verify: dir2.verify, lookup: dir2.lookup, cache: { max: 1, ttlMs: 150 } }), whoami))
  const alice = { Authorization: basic('alice', 'alice-pw') }
  const bob = { Authorization: basic('bob', 'bob-pw') }
  await request(port2, 'GET', '/x', alice)
  await request(port2, 'GET', '/x', alice)
  t.equal(dir2.verifies, 1)
  await request(port2, 'GET', '/x', bob)
  await request(port2, 'GET', '/x', alice)
  t.equal(dir2.verifies, 3, 'max: 1 — bob pushed alice out')
  await sleep(200)
  await request(port2, 'GET', '/x', alice)
  t.equal(dir2.verifies, 4, 'expired after ttlMs')
})

t.test('concurrent first requests with the same credentials share one verification', async (t) => {
  const dir = await directory()
  const port = await serve(t, chain(authenticate({ verify: dir.verify, lookup: dir.lookup }), whoami))
  const replies = await Promise.all(Array.from({ length: 6 }, () => request(port, 'GET', '/x', { Authorization: basic('alice', 'alice-pw') })))
  t.same(replies.map((r) => r.status), [200, 200, 200, 200, 200, 200])
  t.equal(dir.verifies, 1)
})

t.test('a failing verify or lookup is a server error, not a hang', async (t) => {
  const port = await serve(t, chain(authenticate({
    verify: async () => { throw new Error('db down') },
    lookup: async () => { throw new Error('db down') }
  }), whoami))
  t.equal((await request(port, 'GET', '/x', { Authorization: basic('alice', 'pw') })).status, 500)
})

t.test('isBrowserNavigation', async (t) => {
  const req = (method: string, headers: Record<string, string>): http.IncomingMessage => ({ method, headers }) as unknown as http.IncomingMessage
  t.ok(isBrowserNavigation(req('GET', { 'sec-fetch-mode': 'navigate' })))
  t.ok(isBrowserNavigation(req('POST', { 'sec-fetch-mode': 'navigate' })), 'a form submission navigates too')
  t.notOk(isBrowserNavigation(req('GET', { 'sec-fetch-mode': 'cors', accept: 'text/html' })))
  t.ok(isBrowserNavigation(req('GET', { accept: 'text/html' })))
  t.ok(isBrowserNavigation(req('HEAD', { accept: 'application/xhtml+xml, TEXT/HTML;q=0.9' })))
  t.notOk(isBrowserNavigation(req('GET', { accept: 'text/html', 'x-requested-with': 'XMLHttpRequest' })))
  t.notOk(isBrowserNavigation(req('GET', { accept: 'text/htmlx' })))
  t.notOk(isBrowserNavigation(req('GET', { accept: 'text/html; q=0' })))
  t.notOk(isBrowserNavigation(req('GET', { accept: '*/*' })))
  t.notOk(isBrowserNavigation(req('DELETE', { accept: 'text/html' })))
  t.notOk(isBrowserNavigation(req('GET', {})))
})

t.test('options are validated when the factory runs', async (t) => {
  const verify = async (): Promise<undefined> => undefined
  const lookup = verify
  t.throws(() => authenticate(undefined as never), TypeError)
  t.throws(() => authenticate({ lookup } as never), { name: 'TypeError', message: /verify/ })
  t.throws(() => authenticate({ verify } as never), { name: 'TypeError', message: /lookup/ })
  t.throws(() => authenticate({ verify, lookup, isOpen: true as never }), { name: 'TypeError', message: /isOpen/ })
  t.throws(() => authenticate({ verify, lookup, realm: 'a"b' }), { name: 'TypeError', message: /realm/ })
  t.throws(() => authenticate({ verify, lookup, loginPath: 'login' }), { name: 'TypeError', message: /loginPath/ })
  t.throws(() => authenticate({ verify, lookup, cache: { max: 0 } }), { name: 'TypeError', message: /cache\.max/ })
  t.throws(() => authenticate({ verify, lookup, cache: { ttlMs: -5 } }), { name: 'TypeError', message: /cache\.ttlMs/ })
  t.throws(() => authenticate({ verify, lookup, cache: true as never }), { name: 'TypeError', message: /cache/ })
  t.throws(() => authenticate({ verify, lookup, throttle: {} as never }), { name: 'TypeError', message: /throttle/ })
  t.type(authenticate({ verify, lookup }).invalidate, 'function')
})
