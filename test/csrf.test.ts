import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import connect from 'connect'
import { csrf, requestOrigin, isCrossSiteRequest, siteOf } from '../src/middleware/csrf.js'
import { session, MemoryStore, newSessionId } from '../src/middleware/session.js'
import { authenticate } from '../src/middleware/authenticate.js'
import { methodOverride } from '../src/middleware/method-override.js'
import { contextOf } from '../src/middleware/context.js'
import type { AuthUser } from '../src/middleware/context.js'
import type { CsrfOptions } from '../src/middleware/csrf.js'
import { problemHandler } from '../src/middleware/problem.js'

interface Teardown { teardown(fn: () => unknown): void }
interface Reply { status: number; headers: http.IncomingHttpHeaders; body: string }

const USERS: AuthUser[] = [{ id: 1, name: 'alice', enabled: true }]
const verify = async (name: string, password: string): Promise<AuthUser | undefined> =>
  name === 'alice' && password === 'alice-pw' ? USERS[0] : undefined
const lookup = async (id: string | number): Promise<AuthUser | undefined> => USERS.find((u) => u.id === Number(id))

/** method override → session → authenticate → csrf → echo, with `/open/*` anonymous. */
async function app(tt: Teardown, options?: CsrfOptions): Promise<{ port: number; cookie: string }> {
  const store = new MemoryStore()
  const id = newSessionId()
  await store.set(id, { userId: 1, createdAt: Date.now(), lastSeenAt: Date.now(), data: {} }, 60_000)
  const a = connect()
  a.use(methodOverride())
  a.use(session({ store }))
  a.use(authenticate({ verify, lookup, isOpen: (req) => req.url!.startsWith('/open') }))
  a.use(csrf(options))
  a.use((req: http.IncomingMessage, res: http.ServerResponse) => {
    res.end(`${req.method} as ${contextOf(req).authScheme ?? 'anonymous'}`)
  })
  a.use(problemHandler({ log: () => {} }))
  const server = http.createServer(a)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  tt.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  return { port: (server.address() as AddressInfo).port, cookie: `cloudsync.sid=${id}` }
}

function request(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: { Accept: 'application/json', ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
    })
    req.on('error', reject)
    req.end()
  })
}

const basic = 'Basic ' + Buffer.from('alice:alice-pw').toString('base64')

t.test('cookie-authenticated state changes need same-origin proof', async (t) => {
  const { port, cookie } = await app(t)
  const self = `http://127.0.0.1:${port}`
  const cases: Array<[string, string, Record<string, string>, number]> = [
    ['no proof at all', 'POST', {}, 403],
    ['X-Requested-With', 'POST', { 'X-Requested-With': 'XMLHttpRequest' }, 200],
    ['X-Requested-With with any value', 'POST', { 'X-Requested-With': 'fetch' }, 200],
    ['Sec-Fetch-Site: same-origin', 'POST', { 'Sec-Fetch-Site': 'same-origin' }, 200],
    ['same-origin Origin', 'POST', { Origin: self }, 200],
    ['same-origin Origin, upper case', 'POST', { Origin: self.toUpperCase() }, 200],
    ['same-origin Referer without Origin', 'POST', { Referer: `${self}/ui/` }, 200],
    ['cross-site Origin', 'POST', { Origin: 'https://evil.example' }, 403],
    ['cross-site Origin despite X-Requested-With', 'POST', { Origin: 'https://evil.example', 'X-Requested-With': 'XMLHttpRequest' }, 403],
    ['Sec-Fetch-Site: cross-site despite X-Requested-With', 'POST', { 'Sec-Fetch-Site': 'cross-site', 'X-Requested-With': 'XMLHttpRequest' }, 403],
    ['Sec-Fetch-Site: same-site', 'POST', { 'Sec-Fetch-Site': 'same-site', Origin: self }, 403],
    ['Sec-Fetch-Site: none', 'POST', { 'Sec-Fetch-Site': 'none' }, 403],
    ['Origin: null', 'POST', { Origin: 'null', 'X-Requested-With': 'XMLHttpRequest' }, 403],
    ['same host, other port', 'POST', { Origin: 'http://127.0.0.1:1' }, 403],
    ['same host, other scheme', 'POST', { Origin: `https://127.0.0.1:${port}` }, 403],
    ['cross-site Referer', 'POST', { Referer: 'https://evil.example/x' }, 403],
    ['unparsable Referer', 'POST', { Referer: 'not a url' }, 403],
    ['PATCH without proof', 'PATCH', {}, 403],
    ['DELETE without proof', 'DELETE', {}, 403],
    ['PUT without proof', 'PUT', {}, 403],
    ['GET from anywhere', 'GET', { Origin: 'https://evil.example', 'Sec-Fetch-Site': 'cross-site' }, 200],
    ['HEAD from anywhere', 'HEAD', { 'Sec-Fetch-Site': 'cross-site' }, 200],
    ['OPTIONS from anywhere', 'OPTIONS', { 'Sec-Fetch-Site': 'cross-site' }, 200]
  ]
  for (const [what, method, headers, status] of cases) {
    const r = await request(port, method, '/api/rest/tasks/1', { Cookie: cookie, ...headers })
    t.equal(r.status, status, what)
    if (status === 403 && method !== 'HEAD') t.match(JSON.parse(r.body).detail, /X-Requested-With/, `${what}: the detail says what to do`)
  }
})

t.test('a cross-site POST overridden to DELETE is refused (D17); a same-origin one proceeds as DELETE', async (t) => {
  const { port, cookie } = await app(t)
  const attack = await request(port, 'POST', '/api/rest/tasks/1?_method=DELETE', { Cookie: cookie, Origin: 'https://evil.example', 'Content-Type': 'application/x-www-form-urlencoded' })
  t.equal(attack.status, 403)
  const bare = await request(port, 'POST', '/api/rest/tasks/1?_method=DELETE', { Cookie: cookie })
  t.equal(bare.status, 403, 'no proof, no delete')
  const fine = await request(port, 'POST', '/api/rest/tasks/1?_method=DELETE', { Cookie: cookie, 'X-Requested-With': 'XMLHttpRequest' })
  t.equal(fine.status, 200)
  t.equal(fine.body, 'DELETE as session')
})

t.test('Basic-authenticated and anonymous requests are exempt', async (t) => {
  const { port, cookie } = await app(t)
  const viaBasic = await request(port, 'POST', '/api/rest/tasks', { Authorization: basic, Origin: 'https://evil.example', Cookie: cookie })
  t.equal(viaBasic.status, 200)
  t.equal(viaBasic.body, 'POST as basic')
  const open = await request(port, 'POST', '/open/service', { Origin: 'https://evil.example', Cookie: cookie })
  t.equal(open.status, 200)
  t.equal(open.body, 'POST as anonymous')
})

t.test('allowedOrigins and trustProxy', async (t) => {
  const { port, cookie } = await app(t, { allowedOrigins: ['https://UI.example.org:443'], trustProxy: true })
  const trusted = await request(port, 'POST', '/x', { Cookie: cookie, Origin: 'https://ui.example.org', 'Sec-Fetch-Site': 'same-site' })
  t.equal(trusted.status, 200, 'an allowed origin passes although the browser calls it same-site')
  const trustedReferer = await request(port, 'POST', '/x', { Cookie: cookie, Referer: 'https://ui.example.org/page' })
  t.equal(trustedReferer.status, 200)
  const other = await request(port, 'POST', '/x', { Cookie: cookie, Origin: 'https://evil.example.org' })
  t.equal(other.status, 403)
  const proxied = await request(port, 'POST', '/x', { Cookie: cookie, Origin: 'https://cloudsync.example.org', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'cloudsync.example.org, internal:8080' })
  t.equal(proxied.status, 200, 'the public origin from the proxy headers')

  const strict = await app(t)
  const ignored = await request(strict.port, 'POST', '/x', { Cookie: strict.cookie, Origin: 'https://cloudsync.example.org', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'cloudsync.example.org' })
  t.equal(ignored.status, 403, 'forwarded headers are not believed by default')
})

t.test('requestOrigin', async (t) => {
  const req = (headers: Record<string, string>, encrypted = false): http.IncomingMessage =>
    ({ headers, socket: { encrypted } }) as unknown as http.IncomingMessage
  t.equal(requestOrigin(req({ host: 'Example.ORG:8080' })), 'http://example.org:8080')
  t.equal(requestOrigin(req({ host: 'example.org:80' })), 'http://example.org', 'default port dropped')
  t.equal(requestOrigin(req({ host: 'example.org:443' }, true)), 'https://example.org')
  t.equal(requestOrigin(req({ host: 'example.org:443' })), 'http://example.org:443')
  t.equal(requestOrigin(req({ host: '[::1]:80' })), 'http://[::1]')
  t.equal(requestOrigin(req({})), '', 'no Host, no origin')
  t.equal(requestOrigin(req({ host: 'inner', 'x-forwarded-host': 'public.example', 'x-forwarded-proto': 'https' })), 'http://inner')
  t.equal(requestOrigin(req({ host: 'inner', 'x-forwarded-host': 'public.example', 'x-forwarded-proto': 'HTTPS, http' }), true), 'https://public.example')
  t.equal(requestOrigin(req({ host: 'inner', 'x-forwarded-proto': 'https' }), true), 'https://inner')
})

t.test('isCrossSiteRequest and siteOf', async (t) => {
  const req = (headers: Record<string, string>): http.IncomingMessage =>
    ({ headers: { host: 'cloudsync.example.org', ...headers }, socket: {} }) as unknown as http.IncomingMessage
  t.notOk(isCrossSiteRequest(req({})), 'no evidence: not cross-site')
  t.equal(siteOf(req({})), 'unknown')
  t.ok(isCrossSiteRequest(req({ origin: 'https://evil.example' })))
  t.notOk(isCrossSiteRequest(req({ origin: 'http://cloudsync.example.org' })))
  t.ok(isCrossSiteRequest(req({ referer: 'http://evil.example/' })))
  t.ok(isCrossSiteRequest(req({ referer: 'data:text/html,hi' })))
  t.ok(isCrossSiteRequest(req({ 'sec-fetch-site': 'same-site' })))
  t.notOk(isCrossSiteRequest(req({ origin: 'https://ui.example.org', 'sec-fetch-site': 'cross-site' }), { allowedOrigins: ['https://ui.example.org'] }))
  t.equal(siteOf(req({ 'sec-fetch-site': 'same-origin' })), 'same-origin')
  t.throws(() => isCrossSiteRequest(req({}), { allowedOrigins: 'https://x.example' as never }), TypeError)
})

t.test('options are validated when the factory runs', async (t) => {
  t.throws(() => csrf(null as never), TypeError)
  t.throws(() => csrf({ trustProxy: 'yes' as never }), { name: 'TypeError', message: /trustProxy/ })
  t.throws(() => csrf({ allowedOrigins: ['ftp://x.example'] }), { name: 'TypeError', message: /allowedOrigins/ })
  t.throws(() => csrf({ allowedOrigins: ['https://x.example/path'] }), { name: 'TypeError', message: /allowedOrigins/ })
  t.throws(() => csrf({ allowedOrigins: [42 as never] }), { name: 'TypeError', message: /allowedOrigins/ })
  t.type(csrf(), 'function')
})
