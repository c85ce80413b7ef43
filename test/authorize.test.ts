import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import connect from 'connect'
import { authorize, compilePattern } from '../src/middleware/authorize.js'
import type { AuthorizeOptions } from '../src/middleware/authorize.js'
import { methodOverride } from '../src/middleware/method-override.js'
import { contextOf } from '../src/middleware/context.js'
import type { AuthUser } from '../src/middleware/context.js'
import { problemHandler } from '../src/middleware/problem.js'

interface Teardown { teardown(fn: () => unknown): void }
interface Reply { status: number; headers: http.IncomingHttpHeaders; body: string }

const PEOPLE: Record<string, AuthUser> = {
  admin: { id: 1, name: 'admin', admin: true },
  alice: { id: 2, name: 'alice', admin: false }
}

/** method override → "X-User" names the principal → authorize → echo. */
async function app(tt: Teardown, options: AuthorizeOptions): Promise<number> {
  const a = connect()
  a.use(methodOverride())
  a.use((req: http.IncomingMessage, _res: http.ServerResponse, next: (err?: unknown) => void) => {
    const who = req.headers['x-user']
    if (typeof who === 'string') contextOf(req).user = PEOPLE[who]
    next()
  })
  a.use(authorize(options))
  a.use((req: http.IncomingMessage, res: http.ServerResponse) => res.end(`${req.method} ${req.url}`))
  a.use(problemHandler({ log: () => {} }))
  const server = http.createServer(a)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  tt.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  return (server.address() as AddressInfo).port
}

function request(port: number, method: string, path: string, user?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { Accept: 'application/json' }
    if (user !== undefined) headers['X-User'] = user
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
    })
    req.on('error', reject)
    req.end()
  })
}

const isAdmin = (user: AuthUser | undefined): boolean => user?.admin === true

/** The user-management rules of spec §4.3 / §1.4, as an application would write them. */
const userRules: AuthorizeOptions = {
  rules: [
    { method: 'POST', path: '/users', allow: isAdmin, detail: 'Only administrators can create users.' },
    { method: 'DELETE', path: '/users/:id', allow: isAdmin, detail: 'Only administrators can delete users.' },
    {
      method: 'PATCH',
      path: '/users/:id',
      allow: (user, _req, params) => isAdmin(user) || String(user?.id) === params.id,
      detail: 'You can change only your own account; ask an administrator.'
    }
  ]
}

t.test('first matching rule decides; refusals are 403 with the rule\'s detail', async (t) => {
  const port = await app(t, userRules)
  t.equal((await request(port, 'POST', '/users', 'admin')).status, 200)
  const refused = await request(port, 'POST', '/users', 'alice')
  t.equal(refused.status, 403)
  t.equal(JSON.parse(refused.body).detail, 'Only administrators can create users.')
  t.equal((await request(port, 'PATCH', '/users/2', 'alice')).status, 200, 'self')
  t.equal(JSON.parse((await request(port, 'PATCH', '/users/1', 'alice')).body).detail, 'You can change only your own account; ask an administrator.')
  t.equal((await request(port, 'PATCH', '/users/1', 'admin')).status, 200)
  t.equal((await request(port, 'DELETE', '/users/2', 'alice')).status, 403)
  t.equal((await request(port, 'GET', '/users/1', 'alice')).status, 200, 'no rule for GET: default allow')
  t.equal((await request(port, 'POST', '/users', undefined)).status, 403, 'anonymous: allow() gets undefined')
})

t.test('rules use the effective method after override', async (t) => {
  const port = await app(t, userRules)
  t.equal((await request(port, 'POST', '/users/2?_method=DELETE', 'alice')).status, 403, 'POST overridden to DELETE is judged as DELETE')
  t.equal((await request(port, 'POST', '/users/2?_method=DELETE', 'admin')).body, 'DELETE /users/2?_method=DELETE')
})

t.test('paths: one trailing slash, query ignored, segments exact, params decoded', async (t) => {
  const seen: Array<Record<string, string>> = []
  const port = await app(t, {
    rules: [{ path: '/objectSets/:id/items/:item', allow: (_u, _r, params) => { seen.push({ ...params }); return false } }]
  })
  t.equal((await request(port, 'GET', '/objectSets/5/items/a%20b?x=/objectSets/6')).status, 403)
  t.equal((await request(port, 'GET', '/objectSets/5/items/7/')).status, 403, 'one trailing slash')
  t.equal((await request(port, 'GET', '/objectSets/5/items/7//')).status, 200, 'two do not match')
  t.equal((await request(port, 'GET', '/objectSets//items/7')).status, 200, 'an empty segment is no parameter')
  t.equal((await request(port, 'GET', '/objectSets/5/items')).status, 200)
  t.equal((await request(port, 'GET', '/objectsets/5/items/7')).status, 200, 'case-sensitive')
  t.equal((await request(port, 'GET', '/objectSets/5/items/%E0%A4%A')).status, 403, 'a malformed escape is passed as sent')
  t.same(seen, [{ id: '5', item: 'a b' }, { id: '5', item: '7' }, { id: '5', item: '%E0%A4%A' }])
})

t.test('RegExp paths, named groups, method lists, HEAD follows GET', async (t) => {
  const port = await app(t, {
    rules: [
      { method: ['get', 'DELETE'], path: /^\/taskLogs\/(?<id>\d+)\/content$/g, allow: (_u, _r, { id }) => id !== '13' },
      { path: '/__proto__/:__proto__', allow: (_u, _r, params) => Object.keys(params).length === 1 && params.__proto__ === 'x' }
    ]
  })
  for (let i = 0; i < 2; i++) {
    t.equal((await request(port, 'GET', '/taskLogs/13/content')).status, 403, `run ${i}: a /g RegExp has no state between requests`)
  }
  t.equal((await request(port, 'HEAD', '/taskLogs/13/content')).status, 403, 'HEAD is covered by a GET rule')
  t.equal((await request(port, 'DELETE', '/taskLogs/13/content')).status, 403)
  t.equal((await request(port, 'PATCH', '/taskLogs/13/content')).status, 200, 'method not listed')
  t.equal((await request(port, 'GET', '/taskLogs/12/content')).status, 200)
  t.equal((await request(port, 'GET', '/__proto__/x')).status, 200, 'a parameter named __proto__ is just a key')
})

t.test('async rules, failing rules, default: deny', async (t) => {
  const port = await app(t, {
    default: 'deny',
    rules: [
      { path: '/slow', allow: async (user) => { await new Promise((r) => setTimeout(r, 10)); return user !== undefined } },
      { path: '/broken', allow: () => { throw new Error('rule bug') } },
      { path: '/rejecting', allow: () => Promise.reject(new Error('rule bug')) },
      { path: '/truthy', allow: () => 'yes' as unknown as boolean }
    ]
  })
  t.equal((await request(port, 'GET', '/slow', 'alice')).status, 200)
  t.equal((await request(port, 'GET', '/slow')).status, 403)
  t.equal((await request(port, 'GET', '/broken')).status, 500)
  t.equal((await request(port, 'GET', '/rejecting')).status, 500)
  t.equal((await request(port, 'GET', '/truthy')).status, 403, 'only true allows')
  const other = await request(port, 'GET', '/anything', 'admin')
  t.equal(other.status, 403, 'no rule matched: denied by default')
  t.match(JSON.parse(other.body).detail, /ask an administrator/)
})

t.test('compilePattern', async (t) => {
  const { pattern, names } = compilePattern('/users/a:b')
  t.same(names, [])
  t.ok(pattern.test('/users/a:b'), 'a colon inside a segment is literal')
  t.throws(() => compilePattern('/users/:id.json'), { name: 'TypeError', message: /must be an identifier/ }, 'a parameter is a whole segment')
  const p = compilePattern('/a.b/:x')
  t.notOk(p.pattern.test('/aXb/1'), 'dots are literal')
  t.same(p.names, ['x'])
  t.ok(compilePattern('/').pattern.test('/'))
})

t.test('options are validated when the factory runs', async (t) => {
  const allow = (): boolean => true
  t.throws(() => authorize(undefined as never), { name: 'TypeError', message: /rules/ })
  t.throws(() => authorize({ rules: 'x' } as never), { name: 'TypeError', message: /rules/ })
  t.throws(() => authorize({ rules: [], default: 'maybe' as never }), { name: 'TypeError', message: /default/ })
  t.throws(() => authorize({ rules: [null as never] }), { name: 'TypeError', message: /rules\[0\]/ })
  t.throws(() => authorize({ rules: [{ path: '/x' } as never] }), { name: 'TypeError', message: /rules\[0\]\.allow/ })
  t.throws(() => authorize({ rules: [{ path: 'x', allow }] }), { name: 'TypeError', message: /rules\[0\]\.path/ })
  t.throws(() => authorize({ rules: [{ path: '/x', allow, method: [] }] }), { name: 'TypeError', message: /method/ })
  t.throws(() => authorize({ rules: [{ path: '/x', allow, method: 'GE T' }] }), { name: 'TypeError', message: /method/ })
  t.throws(() => authorize({ rules: [{ path: '/x', allow, detail: '' }] }), { name: 'TypeError', message: /detail/ })
  t.throws(() => authorize({ rules: [{ path: '/x/:1bad', allow }] }), { name: 'TypeError', message: /:1bad/ })
})
