import t from 'tap'
import { serve } from './helpers/pieces.js'
import type { Teardown } from './helpers/pieces.js'
import http from 'node:http'
import { randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto'
import { promisify } from 'node:util'
import connect from 'connect'
import express from 'express'
import { login, renderLoginPage, isSafeReturnPath, escapeHtml, LoginThrottle } from '../src/middleware/login.js'
import type { LoginOptions, LoginView } from '../src/middleware/login.js'
import { session, MemoryStore } from '../src/middleware/session.js'
import { authenticate } from '../src/middleware/authenticate.js'
import { contextOf } from '../src/middleware/context.js'
import type { AuthUser, Middleware } from '../src/middleware/context.js'
import { problemHandler } from '../src/middleware/problem.js'

// ---- a tiny user directory with real (cheap) scrypt hashes ----

const scrypt = promisify(scryptCb) as (password: string, salt: Buffer, keylen: number, options: { N: number }) => Promise<Buffer>
const COST = { N: 1024 }

interface StoredUser { id: number; name: string; enabled: boolean; salt: Buffer; hash: Buffer }

class Directory {
  readonly users = new Map<number, StoredUser>()
  readonly calls: Array<[string, string]> = []
  readonly dummySalt = randomBytes(16)
  nextId = 1

  async add(name: string, password: string, enabled = true): Promise<number> {
    const salt = randomBytes(16)
    const id = this.nextId++
    this.users.set(id, { id, name, enabled, salt, hash: await scrypt(password, salt, 32, COST) })
    return id
  }

  verify = async (name: string, password: string): Promise<AuthUser | undefined> => {
    this.calls.push([name, password])
    const user = [...this.users.values()].find((u) => u.name === name)
    // Unknown names hash a dummy: they take as long as known ones.
    const hash = await scrypt(password, user?.salt ?? this.dummySalt, 32, COST)
    if (user === undefined || !timingSafeEqual(hash, user.hash)) return undefined
    return { id: user.id, name: user.name, enabled: user.enabled }
  }

  lookup = async (id: string | number): Promise<AuthUser | undefined> => {
    const user = this.users.get(Number(id))
    return user === undefined ? undefined : { id: user.id, name: user.name, enabled: user.enabled }
  }
}

async function directory(): Promise<Directory> {
  const dir = new Directory()
  await dir.add('alice', 'alice-pw')
  await dir.add('bob', 'bob-pw')
  await dir.add('carol', 'carol-pw', false)
  return dir
}

// ---- harness ----

interface Reply { status: number; headers: http.IncomingHttpHeaders; body: string }

const whoami: Middleware = (req, res) => {
  const ctx = contextOf(req)
  res.setHeader('Content-Type', 'application/json')
  res.end(JSON.stringify({ user: ctx.user?.name ?? null, scheme: ctx.authScheme ?? null }))
}

function request(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer | Buffer[]): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
    })
    req.on('error', reject)
    if (Array.isArray(body)) {
      for (const chunk of body) req.write(chunk)
      req.end()
    } else {
      req.end(body)
    }
  })
}

const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' }
const form = (fields: Record<string, string>): string => new URLSearchParams(fields).toString()
const cookieOf = (r: Reply): string => r.headers['set-cookie']![0]!.split(';')[0]!
const basic = (name: string, password: string): string => 'Basic ' + Buffer.from(`${name}:${password}`).toString('base64')
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const noticeOf = (html: string): string => /<p id="notice" class="notice" role="alert">([^<]*)<\/p>/.exec(html)?.[1] ?? '(no notice region)'

interface App { port: number; dir: Directory; store: MemoryStore; throttle: LoginThrottle }

/** session → login → authenticate → whoami, at the root or under `mount`. */
async function app(tt: Teardown, options: Partial<LoginOptions> = {}, mount?: string): Promise<App> {
  const dir = await directory()
  const store = new MemoryStore()
  const throttle = options.throttle ?? new LoginThrottle()
  const inner = connect()
  inner.use(session({ store }))
  inner.use(login({ verify: dir.verify, throttle, ...options }))
  inner.use(authenticate({ verify: dir.verify, lookup: dir.lookup, throttle }))
  inner.use(whoami)
  inner.use(problemHandler({ log: () => {} }))
  let listener: http.RequestListener = inner
  if (mount !== undefined) {
    const outer = connect()
    outer.use(mount, inner)
    listener = outer
  }
  return { port: await serve(tt, listener), dir, store, throttle }
}

t.test('GET /login renders an accessible, self-contained page', async (t) => {
  const { port } = await app(t)
  const r = await request(port, 'GET', '/login')
  t.equal(r.status, 200)
  t.equal(r.headers['content-type'], 'text/html; charset=UTF-8')
  t.equal(r.headers['cache-control'], 'no-store')
  t.match(r.headers['content-security-policy'], /default-src 'none'/)
  t.match(r.headers['content-security-policy'], /frame-ancestors 'none'/)
  t.equal(r.headers['x-frame-options'], 'DENY')
  t.match(r.body, /^<!DOCTYPE html>\n<html lang="en">/)
  t.match(r.body, /<label for="username">User name<\/label>\n<input id="username" name="username"[^>]*autocomplete="username"/)
  t.match(r.body, /<label for="password">Password<\/label>\n<input id="password" name="password" type="password" autocomplete="current-password"/)
  t.match(r.body, /<form method="post" action="\/login">/)
  t.match(r.body, /role="alert"/)
  t.notMatch(r.body, /<script|\ssrc=|<link|https?:\/\//, 'no scripts and no external resources')
  t.equal(r.headers['set-cookie'], undefined, 'looking at the login page creates no session')
  const head = await request(port, 'HEAD', '/login')
  t.equal(head.status, 200)
  t.equal(head.body, '')
  t.equal(head.headers['content-length'], r.headers['content-length'])
})

t.test('POST /login: success issues a new session id and redirects (303) to the mount root', async (t) => {
  const { port, store } = await app(t)
  // A pre-login session exists (e.g. planted by an attacker, or from an earlier visit).
  const before = cookieOf(await request(port, 'GET', '/api/rest/users', { Accept: 'text/html' }))
  const r = await request(port, 'POST', '/login', { ...FORM, Cookie: before }, form({ username: 'alice', password: 'alice-pw' }))
  t.equal(r.status, 303)
  t.equal(r.headers.location, '/api/rest/users', 'back to the page the browser first asked for')
  const after = cookieOf(r)
  t.not(after, before, 'a fresh session id (no fixation)')
  t.equal(store.size, 1, 'the pre-login session is gone server-side')
  t.same(JSON.parse((await request(port, 'GET', '/api/rest/users', { Cookie: after })).body), { user: 'alice', scheme: 'session' })
  t.equal((await request(port, 'GET', '/api/rest/users', { Cookie: before })).status, 401, 'the old id gives nothing')

  const plain = await request(port, 'POST', '/login', FORM, form({ username: 'bob', password: 'bob-pw' }))
  t.equal(plain.headers.location, '/', 'nothing remembered: the default return path')
})

t.test('aliases and legacy paths', async (t) => {
  const { port } = await app(t)
  const alias = await request(port, 'POST', '/login', FORM, form({ j_username: 'alice', j_password: 'alice-pw' }))
  t.equal(alias.status, 303, 'j_username / j_password')
  const legacy = await request(port, 'POST', '/j_spring_security_check', FORM, form({ j_username: 'alice', j_password: 'alice-pw' }))
  t.equal(legacy.status, 303, 'POST /j_spring_security_check')
  const out = await request(port, 'POST', '/j_spring_security_logout', { Cookie: cookieOf(legacy) })
  t.equal(out.status, 303, 'POST /j_spring_security_logout')
  t.equal(out.headers.location, '/login')
  t.equal((await request(port, 'GET', '/j_spring_security_check')).status, 405, 'legacy paths are POST only')

  const modern = await app(t, { legacyPaths: false })
  const off = await request(modern.port, 'POST', '/j_spring_security_check', { ...FORM, Accept: 'application/json' }, form({ j_username: 'alice', j_password: 'alice-pw' }))
  t.equal(off.status, 401, 'legacyPaths: false — the path is not handled (and is protected)')
})

t.test('a failed login shows the page again with 401 and one generic notice', async (t) => {
  const { port, dir } = await app(t)
  const notices = new Set<string>()
  for (const [name, password] of [['alice', 'nope'], ['nobody', 'nope'], ['carol', 'carol-pw']]) {
    const r = await request(port, 'POST', '/login', FORM, form({ username: name!, password: password! }))
    t.equal(r.status, 401, `${name}/${password}`)
    t.equal(r.headers['www-authenticate'], undefined, 'no Basic challenge: the browser must not pop up a dialog')
    t.equal(r.headers['set-cookie'], undefined, 'no session for a failure')
    t.match(r.body, new RegExp(`<input id="username"[^>]*value="${name}"`), 'the name is kept in the field')
    t.notMatch(r.body, password!, 'the password is not echoed')
    notices.add(noticeOf(r.body))
  }
  t.equal(notices.size, 1, 'wrong password, unknown user and disabled user read the same')
  t.match([...notices][0], /^Login failed/)
  t.same(dir.calls.map(([name]) => name), ['alice', 'nobody', 'carol'], 'every attempt went through verify (same cost)')
})

t.test('missing fields are not answered faster: verify still runs', async (t) => {
  const { port, dir } = await app(t)
  const r = await request(port, 'POST', '/login', FORM, '')
  t.equal(r.status, 401)
  t.equal(noticeOf(r.body).startsWith('Login failed'), true)
  const onlyName = await request(port, 'POST', '/login', FORM, form({ username: 'alice' }))
  t.equal(onlyName.status, 401)
  t.same(dir.calls, [['', ''], ['alice', '']])
})

t.test('the remembered page is followed only when it is a same-origin path', async (t) => {
  const { port, store } = await app(t)
  const hostile = ['//evil.example', '/\\evil.example', 'https://evil.example', '/%2F%2Fevil.example', '/%5Cevil.example',
    'javascript:alert(1)', '/%0d%0aSet-Cookie:x=1', '/%E0%A4%A', 'evil.example', '', '/\\/evil.example']
  for (const target of hostile) {
    const viaForm = await request(port, 'POST', '/login', FORM, form({ username: 'alice', password: 'alice-pw', returnTo: target }))
    t.equal(viaForm.headers.location, '/', `form returnTo ${JSON.stringify(target)} ignored`)
    const viaQuery = await request(port, 'POST', '/login?returnTo=' + encodeURIComponent(target), FORM, form({ username: 'alice', password: 'alice-pw' }))
    t.equal(viaQuery.headers.location, '/', `query returnTo ${JSON.stringify(target)} ignored`)
  }
  // A hostile value in the session data (e.g. from a bad store) is ignored too.
  const planted = cookieOf(await request(port, 'GET', '/x', { Accept: 'text/html' }))
  const id = planted.split('=')[1]!
  const record = (await store.get(id))!
  record.data.returnTo = '//evil.example'
  await store.set(id, record, 60_000)
  t.equal((await request(port, 'POST', '/login', { ...FORM, Cookie: planted }, form({ username: 'alice', password: 'alice-pw' }))).headers.location, '/')

  const fine = await request(port, 'POST', '/login', FORM, form({ username: 'alice', password: 'alice-pw', returnTo: '/api/rest/users.json?a=1' }))
  t.equal(fine.headers.location, '/api/rest/users.json?a=1', 'a same-origin path is followed')
  const fromQuery = await request(port, 'POST', '/login?returnTo=%2Ftasks', FORM, form({ username: 'alice', password: 'alice-pw' }))
  t.equal(fromQuery.headers.location, '/tasks')
})

t.test('isSafeReturnPath', async (t) => {
  for (const ok of ['/', '/a/b?c=d#e', '/cloudsync/api/rest/users.json', '/%41']) t.ok(isSafeReturnPath(ok), ok)
  for (const bad of ['//evil.example', '/\\evil.example', 'https://evil.example', '/%2F%2Fevil', '/%5C%5Cevil', 'x', '', '/a\u0000', '/a\tb', '/%00', '/%zz', '/' + 'a'.repeat(3000), 42, undefined]) {
    t.notOk(isSafeReturnPath(bad), JSON.stringify(bad))
  }
})

t.test('the login page carries a safe returnTo through the form, escaped', async (t) => {
  const { port } = await app(t)
  const page = await request(port, 'GET', '/login?returnTo=' + encodeURIComponent('/a"><script>alert(1)</script>'))
  t.match(page.body, '<input type="hidden" name="returnTo" value="/a&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">')
  t.notMatch(page.body, '<script>')
  const evil = await request(port, 'GET', '/login?returnTo=' + encodeURIComponent('//evil.example'))
  t.notMatch(evil.body, 'name="returnTo"', 'an unsafe target is dropped')
  const failed = await request(port, 'POST', '/login', FORM, form({ username: '<img onerror=x>', password: 'x', returnTo: '/tasks' }))
  t.match(failed.body, 'value="&lt;img onerror=x&gt;"', 'the echoed name is escaped')
  t.match(failed.body, '<input type="hidden" name="returnTo" value="/tasks">', 'the target survives a failed attempt')
})

t.test('throttling: form and Basic failures count together; the 11th attempt gets 429', async (t) => {
  const throttle = new LoginThrottle({ windowMs: 700 })
  const { port } = await app(t, { throttle })
  for (let i = 0; i < 5; i++) await request(port, 'GET', '/x', { Authorization: basic('alice', `basic-guess-${i}`) })
  for (let i = 0; i < 5; i++) {
    t.equal((await request(port, 'POST', '/login', FORM, form({ username: 'alice', password: `form-guess-${i}` }))).status, 401)
  }
  const blocked = await request(port, 'POST', '/login', FORM, form({ username: 'alice', password: 'alice-pw' }))
  t.equal(blocked.status, 429, 'the right password is refused while locked')
  t.equal(blocked.headers['retry-after'], '1')
  t.equal(blocked.headers['set-cookie'], undefined)
  t.match(noticeOf(blocked.body), /^Too many failed attempts for this account\. Try again in 1 seconds\./)
  t.equal((await request(port, 'GET', '/x', { Authorization: basic('alice', 'alice-pw') })).status, 429, 'Basic is locked too')
  t.equal((await request(port, 'POST', '/login', FORM, form({ username: 'bob', password: 'bob-pw' }))).status, 303, 'another account is unaffected')
  await sleep(800)
  t.equal((await request(port, 'POST', '/login', FORM, form({ username: 'alice', password: 'alice-pw' }))).status, 303, 'after the window the right password works')
})

t.test('login CSRF: cross-site login and logout POSTs are refused with 403', async (t) => {
  const { port } = await app(t)
  const self = `http://127.0.0.1:${port}`
  const body = form({ username: 'alice', password: 'alice-pw' })
  for (const [what, headers] of [
    ['cross-site Origin', { Origin: 'https://evil.example' }],
    ['Origin: null', { Origin: 'null' }],
    ['cross-site Referer', { Referer: 'https://evil.example/page' }],
    ['Sec-Fetch-Site: cross-site', { 'Sec-Fetch-Site': 'cross-site' }],
    ['Sec-Fetch-Site: same-site', { 'Sec-Fetch-Site': 'same-site' }],
    ['same Origin but cross-site fetch metadata', { Origin: self, 'Sec-Fetch-Site': 'cross-site' }]
  ] as const) {
    const r = await request(port, 'POST', '/login', { ...FORM, ...headers, Accept: 'application/json' }, body)
    t.equal(r.status, 403, what)
    t.equal(r.headers['set-cookie'], undefined, `${what}: no session`)
  }
  t.equal((await request(port, 'POST', '/login', { ...FORM, Origin: self, 'Sec-Fetch-Site': 'same-origin' }, body)).status, 303, 'same-origin form')
  t.equal((await request(port, 'POST', '/login', { ...FORM, Referer: `${self}/login` }, body)).status, 303, 'same-origin Referer')
  const ok = await request(port, 'POST', '/login', FORM, body)
  t.equal(ok.status, 303, 'a script without any of these headers may log in')

  const cookie = cookieOf(ok)
  t.equal((await request(port, 'POST', '/logout', { Cookie: cookie, Origin: 'https://evil.example' })).status, 403, 'cross-site logout')
  t.equal(JSON.parse((await request(port, 'GET', '/x', { Cookie: cookie })).body).user, 'alice', 'still logged in')

  const trusted = await app(t, { allowedOrigins: ['https://portal.example.org'] })
  t.equal((await request(trusted.port, 'POST', '/login', { ...FORM, Origin: 'https://portal.example.org', 'Sec-Fetch-Site': 'same-site' }, body)).status, 303, 'allowedOrigins')
  const proxied = await app(t, { trustProxy: true })
  t.equal((await request(proxied.port, 'POST', '/login', { ...FORM, Origin: 'https://cloudsync.example.org', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'cloudsync.example.org' }, body)).status, 303, 'trustProxy: the public origin counts')
  t.equal((await request(port, 'POST', '/login', { ...FORM, Origin: 'https://cloudsync.example.org', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'cloudsync.example.org' }, body)).status, 403, 'without trustProxy forwarded headers are not believed')
})

t.test('POST /logout destroys the session server-side, clears the cookie and redirects to the login page', async (t) => {
  const { port, store } = await app(t)
  const cookie = cookieOf(await request(port, 'POST', '/login', FORM, form({ username: 'alice', password: 'alice-pw' })))
  const out = await request(port, 'POST', '/logout', { Cookie: cookie, ...FORM }, 'anything=1')
  t.equal(out.status, 303)
  t.equal(out.headers.location, '/login')
  t.match(out.headers['set-cookie']![0], /^cloudsync\.sid=; Max-Age=0;/)
  t.equal(store.size, 0)
  t.equal((await request(port, 'GET', '/x', { Cookie: cookie })).status, 401, 'the replayed cookie is useless')
  const anonymous = await request(port, 'POST', '/logout')
  t.equal(anonymous.status, 303, 'logging out without a session is harmless')
})

t.test('methods: 405 with Allow, OPTIONS answered', async (t) => {
  const { port } = await app(t)
  const put = await request(port, 'PUT', '/login', { Accept: 'application/json' })
  t.equal(put.status, 405)
  t.equal(put.headers.allow, 'GET, HEAD, POST, OPTIONS')
  const getLogout = await request(port, 'GET', '/logout', { Accept: 'application/json' })
  t.equal(getLogout.status, 405, 'GET /logout does not log out (no logout by <img>)')
  t.equal(getLogout.headers.allow, 'POST, OPTIONS')
  const options = await request(port, 'OPTIONS', '/login')
  t.equal(options.status, 200)
  t.equal(options.headers.allow, 'GET, HEAD, POST, OPTIONS')
  t.equal((await request(port, 'GET', '/login/extra', { Accept: 'application/json' })).status, 401, 'other paths fall through')
})

t.test('bad bodies: 415, 413, never a hang', async (t) => {
  const { port } = await app(t)
  const json = await request(port, 'POST', '/login', { 'Content-Type': 'application/json', Accept: 'application/json' }, '{"username":"alice","password":"alice-pw"}')
  t.equal(json.status, 415)
  t.equal((await request(port, 'POST', '/login', { Accept: 'application/json' }, 'username=alice')).status, 415, 'no Content-Type')
  const big = 'username=alice&password=' + 'x'.repeat(9000)
  t.equal((await request(port, 'POST', '/login', { ...FORM, Accept: 'application/json' }, big)).status, 413, 'declared too large')
  const chunks = Array.from({ length: 20 }, () => Buffer.alloc(1024, 'a'))
  const chunked = await request(port, 'POST', '/login', { ...FORM, Accept: 'application/json', 'Transfer-Encoding': 'chunked' }, chunks)
  t.equal(chunked.status, 413, 'streamed too large')
  t.equal((await request(port, 'POST', '/login', { 'Content-Type': 'Application/X-WWW-Form-Urlencoded; charset=UTF-8' }, form({ username: 'alice', password: 'alice-pw' }))).status, 303, 'media type matched case-insensitively, parameters allowed')
  const weird = await request(port, 'POST', '/login', FORM, Buffer.from([0xff, 0xfe, 0x3d, 0x26, 0x25, 0x00]))
  t.equal(weird.status, 401, 'undecodable bytes are just a failed login')
})

t.test('a body already parsed by Express is used', async (t) => {
  const dir = await directory()
  const ex = express()
  ex.use(express.urlencoded({ extended: false }))
  ex.use(express.json())
  ex.use(session())
  ex.use(login({ verify: dir.verify }))
  ex.use(whoami)
  ex.use(problemHandler({ log: () => {} }))
  const outer = express()
  outer.use('/cloudsync', ex)
  const port = await serve(t, outer)
  const r = await request(port, 'POST', '/cloudsync/login', FORM, form({ username: 'alice', password: 'alice-pw' }))
  t.equal(r.status, 303)
  t.equal(r.headers.location, '/cloudsync/', 'Express mount path from baseUrl')
  const page = await request(port, 'GET', '/cloudsync/login')
  t.match(page.body, '<form method="post" action="/cloudsync/login">')
  const out = await request(port, 'POST', '/cloudsync/logout', { Cookie: cookieOf(r) })
  t.equal(out.headers.location, '/cloudsync/login')
  const json = await request(port, 'POST', '/cloudsync/login', { 'Content-Type': 'application/json' }, '{"username":"alice","password":"alice-pw"}')
  t.equal(json.status, 415, 'a JSON body parsed by someone else is still not a login form')
})

t.test('mounted with connect: form action and redirects include the mount', async (t) => {
  const { port } = await app(t, { defaultReturnPath: '/ui/' }, '/cloudsync')
  t.match((await request(port, 'GET', '/cloudsync/login')).body, 'action="/cloudsync/login"')
  const nav = await request(port, 'GET', '/cloudsync/api/rest/users.json', { Accept: 'text/html' })
  t.equal(nav.headers.location, '/cloudsync/login')
  const r = await request(port, 'POST', '/cloudsync/login', { ...FORM, Cookie: cookieOf(nav) }, form({ username: 'alice', password: 'alice-pw' }))
  t.equal(r.headers.location, '/cloudsync/api/rest/users.json')
  const plain = await request(port, 'POST', '/cloudsync/login', FORM, form({ username: 'alice', password: 'alice-pw' }))
  t.equal(plain.headers.location, '/cloudsync/ui/', 'defaultReturnPath under the mount')
})

t.test('custom paths, title, renderPage and onLogin', async (t) => {
  const views: LoginView[] = []
  const logins: string[] = []
  const { port } = await app(t, {
    loginPath: '/signin',
    logoutPath: '/signout',
    title: 'Archive <Sync>',
    renderPage: (view) => {
      views.push(view)
      return renderLoginPage(view)
    },
    onLogin: (user, req) => logins.push(`${user.name} ${req.method}`)
  })
  const page = await request(port, 'GET', '/signin')
  t.match(page.body, '<title>Log in to Archive &lt;Sync&gt;</title>')
  t.same(views[0], { mode: 'login', status: 200, username: '', returnTo: undefined, title: 'Archive <Sync>', action: '/signin' })
  const r = await request(port, 'POST', '/signin', FORM, form({ username: 'alice', password: 'alice-pw' }))
  t.equal(r.status, 303)
  t.same(logins, ['alice POST'])
  t.equal((await request(port, 'POST', '/signout', { Cookie: cookieOf(r) })).headers.location, '/signin')
  t.equal((await request(port, 'GET', '/login', { Accept: 'application/json' })).status, 401, 'the default path is no longer handled')
})

t.test('first run: the page asks for the first administrator and logs them in', async (t) => {
  let initialized = false
  const created: Array<[string, string]> = []
  let dir: Directory | undefined
  const setup = {
    isInitialized: async () => initialized,
    initialize: async (name: string, password: string) => {
      if (initialized) throw new Error('already initialized')
      created.push([name, password])
      await dir!.add(name, password)
      initialized = true
    }
  }
  const built = await app(t, { setup })
  dir = built.dir
  const { port } = built
  const page = await request(port, 'GET', '/login')
  t.match(page.body, '<h1>Set up CloudSync</h1>')
  t.match(page.body, /<input id="confirm" name="confirm" type="password" autocomplete="new-password"/)
  t.match(page.body, /<input id="password" name="password" type="password" autocomplete="new-password"/)

  const mismatch = await request(port, 'POST', '/login', FORM, form({ username: 'root', password: 'a', confirm: 'b' }))
  t.equal(mismatch.status, 400)
  t.match(noticeOf(mismatch.body), /do not match/)
  t.match(mismatch.body, 'value="root"')
  const blank = await request(port, 'POST', '/login', FORM, form({ username: '   ', password: 'a', confirm: 'a' }))
  t.equal(blank.status, 400)
  t.match(noticeOf(blank.body), /1 to 64 characters/)
  t.equal((await request(port, 'POST', '/login', FORM, form({ username: 'x'.repeat(65), password: 'a', confirm: 'a' }))).status, 400)
  t.equal((await request(port, 'POST', '/login', FORM, form({ username: 'root', password: '', confirm: '' }))).status, 400)
  t.same(created, [], 'nothing created from invalid input')

  const cross = await request(port, 'POST', '/login', { ...FORM, Origin: 'https://evil.example' }, form({ username: 'evil', password: 'x', confirm: 'x' }))
  t.equal(cross.status, 403, 'a cross-site page cannot set the service up')

  const ok = await request(port, 'POST', '/login', FORM, form({ username: '  root  ', password: 's3cret', confirm: 's3cret' }))
  t.equal(ok.status, 303)
  t.same(created, [['root', 's3cret']], 'the name is trimmed')
  t.equal(JSON.parse((await request(port, 'GET', '/x', { Cookie: cookieOf(ok) })).body).user, 'root', 'logged in as the new administrator')

  t.match((await request(port, 'GET', '/login')).body, '<h1>Log in to CloudSync</h1>', 'afterwards the normal form')
  const again = await request(port, 'POST', '/login', FORM, form({ username: 'second', password: 'x', confirm: 'x' }))
  t.equal(again.status, 401, 'setup cannot run twice')
})

t.test('first run: losing the race to another administrator is explained', async (t) => {
  let checks = 0
  const setup = {
    // Not initialized when the POST arrives, initialized by the time initialize() runs.
    isInitialized: async () => checks++ > 0,
    initialize: async () => { throw new Error('already initialized') }
  }
  const { port } = await app(t, { setup })
  const r = await request(port, 'POST', '/login', FORM, form({ username: 'root', password: 'pw', confirm: 'pw' }))
  t.equal(r.status, 409)
  t.match(noticeOf(r.body), /set up by someone else/)
})

t.test('without session() mounted first: a clear 503 saying what to fix', async (t) => {
  const dir = await directory()
  const bare = connect()
  bare.use(login({ verify: dir.verify }))
  bare.use(problemHandler({ log: () => {} }))
  const port = await serve(t, bare)
  for (const method of ['GET', 'POST']) {
    const r = await request(port, method, '/login', { ...FORM, Accept: 'application/json' }, form({ username: 'alice', password: 'alice-pw' }))
    t.equal(r.status, 503, method)
    t.match(JSON.parse(r.body).detail, /mount session\(\) before login\(\)/)
  }
})

t.test('escapeHtml and renderLoginPage', async (t) => {
  t.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;')
  const html = renderLoginPage({ mode: 'login', status: 401, title: 'T', action: '/login', username: 'u', notice: '<b>no</b>' })
  t.match(html, '<p id="notice" class="notice" role="alert">&lt;b&gt;no&lt;/b&gt;</p>')
  t.match(html, 'aria-describedby="notice"')
  t.match(html, 'aria-invalid="true"')
})

t.test('options are validated when the factory runs', async (t) => {
  const verify = async (): Promise<undefined> => undefined
  t.throws(() => login(undefined as never), TypeError)
  t.throws(() => login({} as never), { name: 'TypeError', message: /verify/ })
  t.throws(() => login({ verify, loginPath: 'login' }), { name: 'TypeError', message: /loginPath/ })
  t.throws(() => login({ verify, logoutPath: '/out?x' }), { name: 'TypeError', message: /logoutPath/ })
  t.throws(() => login({ verify, defaultReturnPath: '//evil.example' }), { name: 'TypeError', message: /defaultReturnPath/ })
  t.throws(() => login({ verify, loginPath: '/same', logoutPath: '/same' }), { name: 'TypeError', message: /differ/ })
  t.throws(() => login({ verify, legacyPaths: 'yes' as never }), { name: 'TypeError', message: /legacyPaths/ })
  t.throws(() => login({ verify, setup: { isInitialized: async () => true } as never }), { name: 'TypeError', message: /setup/ })
  t.throws(() => login({ verify, title: 5 as never }), { name: 'TypeError', message: /title/ })
  t.throws(() => login({ verify, renderPage: 'x' as never }), { name: 'TypeError', message: /renderPage/ })
  t.throws(() => login({ verify, onLogin: 'x' as never }), { name: 'TypeError', message: /onLogin/ })
  t.throws(() => login({ verify, throttle: {} as never }), { name: 'TypeError', message: /throttle/ })
  t.throws(() => login({ verify, trustProxy: 1 as never }), { name: 'TypeError', message: /trustProxy/ })
  t.throws(() => login({ verify, allowedOrigins: ['not an origin'] }), { name: 'TypeError', message: /allowedOrigins/ })
})
