import t from 'tap'
import { chain, serve } from './helpers/pieces.js'
import type { Teardown } from './helpers/pieces.js'
import http from 'node:http'
import https from 'node:https'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { session, MemoryStore, sessionCookieName, isSessionId, newSessionId } from '../src/middleware/session.js'
import { contextOf } from '../src/middleware/context.js'
import type { Middleware, SessionRecord, SessionStore } from '../src/middleware/context.js'

// ---- tiny in-file harness: real sockets on 127.0.0.1, closed at teardown ----

interface Reply { status: number; headers: http.IncomingHttpHeaders; body: string }

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

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function cookieOf(reply: Reply): string {
  const line = reply.headers['set-cookie']?.[0]
  if (line === undefined) throw new Error('no Set-Cookie')
  return line.split(';')[0]!
}

/** A store that counts calls, to prove what reaches it; optionally it ignores the ttl hint, like a lazy database. */
class CountingStore implements SessionStore {
  readonly inner = new MemoryStore()
  constructor(readonly ignoreTtl = false) {}
  gets: string[] = []
  sets = 0
  destroys: string[] = []
  get(id: string): Promise<SessionRecord | undefined> {
    this.gets.push(id)
    return this.inner.get(id)
  }
  set(id: string, record: SessionRecord, ttlMs: number): Promise<void> {
    this.sets++
    return this.inner.set(id, record, this.ignoreTtl ? 3_600_000 : ttlMs)
  }
  destroy(id: string): Promise<void> {
    this.destroys.push(id)
    return this.inner.destroy(id)
  }
}

/**
 * The app under test: `/login` saves userId 7 (regenerating), `/save` saves a
 * counter, `/logout` destroys, anything else reports the session.
 */
const app: Middleware = (req, res, next) => {
  const s = contextOf(req).session
  if (s === undefined) return next(new Error('no session'))
  const done = (): void => {
    res.setHeader('Content-Type', 'application/json')
    res.end(JSON.stringify({ id: s.id, userId: s.record.userId ?? null, data: s.record.data }))
  }
  if (req.url === '/login') {
    s.regenerate().then(() => {
      s.record.userId = 7
      return s.save()
    }).then(done, next)
  } else if (req.url === '/save') {
    s.record.data.n = ((s.record.data.n as number | undefined) ?? 0) + 1
    s.save().then(done, next)
  } else if (req.url === '/logout') {
    s.destroy().then(done, next)
  } else if (req.url === '/theme') {
    res.setHeader('Set-Cookie', 'theme=dark; Path=/')
    s.save().then(done, next)
  } else if (req.url === '/late') {
    res.writeHead(200)
    s.save().then(() => res.end('saved'), (err: Error) => res.end('refused: ' + err.message))
  } else {
    done()
  }
}

t.test('an anonymous request gets a session handle but no cookie and no stored session', async (t) => {
  const store = new CountingStore()
  const port = await serve(t, chain(session({ store }), app))
  const r = await request(port, 'GET', '/')
  t.equal(r.status, 200)
  t.equal(r.headers['set-cookie'], undefined, 'no cookie for anonymous requests')
  t.equal(JSON.parse(r.body).userId, null)
  t.equal(store.inner.size, 0, 'nothing stored')
  t.equal(store.sets, 0)
})

t.test('save() stores the session and sets a HttpOnly SameSite=Lax cookie that later requests load', async (t) => {
  const store = new CountingStore()
  const port = await serve(t, chain(session({ store }), app))
  const first = await request(port, 'POST', '/save')
  const line = first.headers['set-cookie']![0]!
  t.match(line, /^cloudsync\.sid=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax$/)
  t.notMatch(line, /Secure/, 'no Secure flag over plain HTTP')
  const cookie = cookieOf(first)
  const second = await request(port, 'POST', '/save', { Cookie: `other=1; ${cookie}; more=2` })
  t.same(JSON.parse(second.body).data, { n: 2 }, 'the stored data came back')
  t.equal(second.headers['set-cookie'], undefined, 'an existing session is not re-sent')
  t.equal(JSON.parse(second.body).id, cookie.split('=')[1])
})

t.test('other cookies set by the app are kept next to the session cookie', async (t) => {
  const port = await serve(t, chain(session(), app))
  const r = await request(port, 'POST', '/theme')
  t.equal(r.headers['set-cookie']!.length, 2)
  t.match(r.headers['set-cookie']![0], /^theme=dark/)
  t.match(r.headers['set-cookie']![1], /^cloudsync\.sid=/)
})

t.test('forged and garbage cookies never reach the store and never fail the request', async (t) => {
  const store = new CountingStore()
  const port = await serve(t, chain(session({ store }), app))
  const garbage = [
    'cloudsync.sid=abc',
    'cloudsync.sid=' + 'a'.repeat(42) + '!',
    'cloudsync.sid=' + 'a'.repeat(44),
    'cloudsync.sid=' + 'a'.repeat(5000),
    'cloudsync.sid=%E0%A4%A',
    'cloudsync.sid="' + 'a'.repeat(43) + '"x',
    'cloudsync.sid=' + encodeURIComponent('../../etc/passwd'),
    'cloudsync.sid',
    ';;;=;cloudsync.sid==;',
    'cloudsync.sid=' + 'a'.repeat(41) + '%00'
  ]
  for (const cookie of garbage) {
    const r = await request(port, 'GET', '/', { Cookie: cookie })
    t.equal(r.status, 200, cookie.slice(0, 40))
    t.equal(JSON.parse(r.body).userId, null)
    t.equal(r.headers['set-cookie'], undefined)
  }
  t.same(store.gets, [], 'the store was never asked about a malformed id')
  const wellFormed = newSessionId()
  const r = await request(port, 'GET', '/', { Cookie: `cloudsync.sid=${wellFormed}` })
  t.equal(r.status, 200, 'an unknown but well-formed id is simply anonymous')
  t.same(store.gets, [wellFormed])
  t.not(JSON.parse(r.body).id, wellFormed, 'a client-chosen id is never adopted')
})

t.test('the idle timeout ends a session and destroys it in the store', async (t) => {
  // The store keeps entries past the ttl hint: the middleware itself must enforce the timeout.
  const store = new CountingStore(true)
  const port = await serve(t, chain(session({ store, idleTimeoutMs: 300 }), app))
  const cookie = cookieOf(await request(port, 'POST', '/login'))
  t.equal(JSON.parse((await request(port, 'GET', '/', { Cookie: cookie })).body).userId, 7, 'live at first')
  await sleep(450)
  const r = await request(port, 'GET', '/', { Cookie: cookie })
  t.equal(JSON.parse(r.body).userId, null, 'idle too long: anonymous')
  await sleep(20) // the destroy is not awaited by the request
  t.same(store.destroys.slice(-1), [cookie.split('=')[1]], 'the expired session was destroyed')
  t.equal(store.inner.size, 0)
})

t.test('the store\'s own expiry (the ttl hint) also ends a session', async (t) => {
  const port = await serve(t, chain(session({ idleTimeoutMs: 200 }), app))
  const cookie = cookieOf(await request(port, 'POST', '/login'))
  await sleep(300)
  t.equal(JSON.parse((await request(port, 'GET', '/', { Cookie: cookie })).body).userId, null)
})

t.test('activity keeps a session alive, with at most one store write per touch interval', async (t) => {
  const store = new CountingStore()
  // idle 400 ms: the touch interval is a quarter of it (100 ms), capped at one minute.
  const port = await serve(t, chain(session({ store, idleTimeoutMs: 400 }), app))
  const cookie = cookieOf(await request(port, 'POST', '/login'))
  const writesAfterLogin = store.sets
  const started = Date.now()
  let requests = 0
  while (Date.now() - started < 900) {
    const r = await request(port, 'GET', '/', { Cookie: cookie })
    t.equal(JSON.parse(r.body).userId, 7)
    requests++
    await sleep(30)
  }
  t.ok(requests >= 10, `made ${requests} requests`)
  const touches = store.sets - writesAfterLogin
  t.ok(touches >= 2, `touched ${touches} times over 900 ms`)
  t.ok(touches <= 10, `at most one write per 100 ms (${touches} writes for ${requests} requests)`)
})

t.test('a polling client causes no store writes within the default touch interval', async (t) => {
  const store = new CountingStore()
  const port = await serve(t, chain(session({ store }), app))
  const cookie = cookieOf(await request(port, 'POST', '/login'))
  const writes = store.sets
  for (let i = 0; i < 25; i++) await request(port, 'GET', '/', { Cookie: cookie })
  t.equal(store.sets, writes, '25 reads, 0 writes')
})

t.test('the absolute timeout ends a session however active it is', async (t) => {
  const port = await serve(t, chain(session({ store: new CountingStore(true), idleTimeoutMs: 60_000, absoluteTimeoutMs: 400 }), app))
  const cookie = cookieOf(await request(port, 'POST', '/login'))
  await sleep(150)
  t.equal(JSON.parse((await request(port, 'GET', '/', { Cookie: cookie })).body).userId, 7)
  await sleep(150)
  t.equal(JSON.parse((await request(port, 'GET', '/', { Cookie: cookie })).body).userId, 7)
  await sleep(250)
  t.equal(JSON.parse((await request(port, 'GET', '/', { Cookie: cookie })).body).userId, null, 'past 400 ms since login')
})

t.test('regenerate() issues a new id for the same data and kills the old id', async (t) => {
  const store = new CountingStore()
  const port = await serve(t, chain(session({ store }), app))
  const before = cookieOf(await request(port, 'POST', '/save'))
  const login = await request(port, 'POST', '/login', { Cookie: before })
  const after = cookieOf(login)
  t.not(after, before, 'a new id after login (no fixation)')
  t.same(JSON.parse(login.body).data, { n: 1 }, 'data carried over')
  t.ok(store.destroys.includes(before.split('=')[1]!), 'the old id was destroyed server-side')
  t.equal(JSON.parse((await request(port, 'GET', '/', { Cookie: before })).body).userId, null, 'replaying the old cookie gives nothing')
  t.equal(JSON.parse((await request(port, 'GET', '/', { Cookie: after })).body).userId, 7)
})

t.test('destroy() deletes server-side and clears the cookie; a replayed cookie is useless', async (t) => {
  const store = new CountingStore()
  const port = await serve(t, chain(session({ store }), app))
  const cookie = cookieOf(await request(port, 'POST', '/login'))
  const out = await request(port, 'POST', '/logout', { Cookie: cookie })
  t.match(out.headers['set-cookie']![0], /^cloudsync\.sid=; Max-Age=0; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax$/)
  t.equal(store.inner.size, 0)
  t.equal(JSON.parse((await request(port, 'GET', '/', { Cookie: cookie })).body).userId, null)
})

t.test('save() after the headers were sent fails with a clear message instead of losing the cookie', async (t) => {
  const port = await serve(t, chain(session(), app))
  const r = await request(port, 'POST', '/late')
  t.match(r.body, /^refused: session\.save\(\) was called after the response headers were sent/)
})

t.test('secure cookies: __Host- prefix, Secure flag, __Secure- for a narrower path', async (t) => {
  const always = await serve(t, chain(session({ secure: true }), app))
  t.match((await request(always, 'POST', '/save')).headers['set-cookie']![0], /^__Host-cloudsync\.sid=[\w-]{43}; Path=\/; HttpOnly; Secure; SameSite=Lax$/)
  const scoped = await serve(t, chain(session({ secure: true, path: '/app', cookieName: 'sid' }), app))
  const line = (await request(scoped, 'POST', '/save')).headers['set-cookie']![0]!
  t.match(line, /^__Secure-sid=[\w-]{43}; Path=\/app; HttpOnly; Secure; SameSite=Lax$/)
  const cookie = line.split(';')[0]!
  t.same(JSON.parse((await request(scoped, 'POST', '/save', { Cookie: cookie })).body).data, { n: 2 }, 'the prefixed cookie is read back')
  const never = await serve(t, chain(session({ secure: false }), app))
  t.notMatch((await request(never, 'POST', '/save', { 'X-Forwarded-Proto': 'https' })).headers['set-cookie']![0], /Secure/)
})

t.test("secure: 'auto' follows X-Forwarded-Proto only with trustProxy", async (t) => {
  const trusting = await serve(t, chain(session({ trustProxy: true }), app))
  const viaProxy = await request(trusting, 'POST', '/save', { 'X-Forwarded-Proto': 'https' })
  t.match(viaProxy.headers['set-cookie']![0], /^__Host-cloudsync\.sid=.*; Secure;/)
  const cookie = cookieOf(viaProxy)
  t.same(JSON.parse((await request(trusting, 'POST', '/save', { 'X-Forwarded-Proto': 'https', Cookie: cookie })).body).data, { n: 2 })
  const plainName = cookie.replace('__Host-', '')
  t.same(JSON.parse((await request(trusting, 'POST', '/save', { 'X-Forwarded-Proto': 'https', Cookie: plainName })).body).data, { n: 1 },
    'over HTTPS an unprefixed cookie (which any subdomain could plant) is ignored')
  const distrusting = await serve(t, chain(session(), app))
  t.match((await request(distrusting, 'POST', '/save', { 'X-Forwarded-Proto': 'https' })).headers['set-cookie']![0], /^cloudsync\.sid=/, 'the header is ignored without trustProxy')
})

let haveOpenssl = true
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' })
} catch {
  haveOpenssl = false
}

t.test("secure: 'auto' marks cookies Secure on a real TLS connection", { skip: haveOpenssl ? false : 'openssl is not available to make a test certificate' }, async (t) => {
  const dir = t.testdir()
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' })
  const server = https.createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, chain(session(), app))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  const port = (server.address() as AddressInfo).port
  const line = await new Promise<string>((resolve, reject) => {
    https.request({ host: '127.0.0.1', port, method: 'POST', path: '/save', rejectUnauthorized: false, agent: false }, (res) => {
      res.resume()
      resolve(res.headers['set-cookie']![0]!)
    }).on('error', reject).end()
  })
  t.match(line, /^__Host-cloudsync\.sid=[\w-]{43}; Path=\/; HttpOnly; Secure; SameSite=Lax$/)
})

t.test('a failing store is a logged server error, not a hang', async (t) => {
  const broken: SessionStore = {
    get: () => Promise.reject(new Error('database is down')),
    set: () => Promise.resolve(),
    destroy: () => Promise.resolve()
  }
  const port = await serve(t, chain(session({ store: broken }), app))
  const r = await request(port, 'GET', '/', { Cookie: `cloudsync.sid=${newSessionId()}`, Accept: 'application/json' })
  t.equal(r.status, 500)
  t.equal(JSON.parse(r.body).status, 500)
})

t.test('a corrupt stored record counts as no session', async (t) => {
  const store = new MemoryStore()
  const id = newSessionId()
  await store.set(id, { createdAt: 'yesterday', data: null } as unknown as SessionRecord, 60_000)
  const port = await serve(t, chain(session({ store }), app))
  const r = await request(port, 'GET', '/', { Cookie: `cloudsync.sid=${id}` })
  t.equal(r.status, 200)
  t.equal(JSON.parse(r.body).userId, null)
})

t.test('mounting session() twice keeps the first handle', async (t) => {
  let first: unknown
  const port = await serve(t, chain(session(), (req, _res, next) => {
    first = contextOf(req).session
    next()
  }, session(), (req, res) => res.end(String(contextOf(req).session === first))))
  t.equal((await request(port, 'GET', '/')).body, 'true')
})

t.test('sessionCookieName, isSessionId, newSessionId', async (t) => {
  const plain = { headers: {}, socket: {} } as http.IncomingMessage
  const proxied = { headers: { 'x-forwarded-proto': 'https' }, socket: {} } as unknown as http.IncomingMessage
  t.equal(sessionCookieName(plain), 'cloudsync.sid')
  t.equal(sessionCookieName(proxied), 'cloudsync.sid')
  t.equal(sessionCookieName(proxied, { trustProxy: true }), '__Host-cloudsync.sid')
  t.equal(sessionCookieName(plain, { secure: true, path: '/x', cookieName: 'sid' }), '__Secure-sid')
  const id = newSessionId()
  t.ok(isSessionId(id))
  t.not(newSessionId(), id)
  t.notOk(isSessionId(id.slice(1)))
  t.notOk(isSessionId(42))
})

t.test('options are validated when the factory runs', async (t) => {
  t.throws(() => session({ cookieName: 'has space' }), { name: 'TypeError', message: /cookieName/ })
  t.throws(() => session({ cookieName: '__Host-sid' }), { name: 'TypeError', message: /cookieName/ })
  t.throws(() => session({ idleTimeoutMs: 0 }), { name: 'TypeError', message: /idleTimeoutMs/ })
  t.throws(() => session({ absoluteTimeoutMs: 1.5 }), { name: 'TypeError', message: /absoluteTimeoutMs/ })
  t.throws(() => session({ secure: 'yes' as unknown as boolean }), { name: 'TypeError', message: /secure/ })
  t.throws(() => session({ trustProxy: 'true' as unknown as boolean }), { name: 'TypeError', message: /trustProxy/ })
  t.throws(() => session({ path: 'app' }), { name: 'TypeError', message: /path/ })
  t.throws(() => session({ path: '/a;b' }), { name: 'TypeError', message: /path/ })
  t.throws(() => session({ store: {} as SessionStore }), { name: 'TypeError', message: /store/ })
  t.throws(() => new MemoryStore({ max: 0 }), { name: 'TypeError', message: /max/ })
})

t.test('MemoryStore: bounded, least recently used first, expiring, copying', async (t) => {
  const store = new MemoryStore({ max: 3 })
  const rec = (userId: number): SessionRecord => ({ userId, createdAt: 1, lastSeenAt: 1, data: { nested: { userId } } })
  await store.set('a', rec(1), 60_000)
  await store.set('b', rec(2), 60_000)
  await store.set('c', rec(3), 60_000)
  t.ok(await store.get('a'), 'touch a: now b is the least recently used')
  await store.set('d', rec(4), 60_000)
  t.equal(store.size, 3)
  t.equal(await store.get('b'), undefined, 'b was evicted')
  t.ok(await store.get('a'))

  const got = (await store.get('c'))!
  ;(got.data.nested as { userId: number }).userId = 99
  got.userId = 99
  t.same(await store.get('c'), rec(3), 'changing a returned record does not change the store')

  await store.set('short', rec(5), 50)
  await sleep(80)
  t.equal(await store.get('short'), undefined, 'expired after its ttl')

  await store.set('e', rec(7), 60_000)
  await store.destroyByUser('7')
  t.equal(await store.get('e'), undefined, 'destroyByUser treats "7" and 7 alike')
  t.ok(await store.get('a'), 'other users untouched')
  await store.destroy('a')
  t.equal(await store.get('a'), undefined)
})
