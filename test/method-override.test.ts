import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import connect from 'connect'
import { methodOverride } from '../src/middleware/method-override.js'
import type { MethodOverrideOptions } from '../src/middleware/method-override.js'
import { contextOf } from '../src/middleware/context.js'
import type { ConnectRequest, Middleware } from '../src/middleware/context.js'
import { problemHandler } from '../src/middleware/problem.js'
import { request } from './helpers/http.js'

interface Teardown { teardown(fn: () => unknown): void }
interface Seen { method?: string; originalMethod?: string; ctxOriginal?: string; errorCode?: string }

/** A connect app: [before…], methodOverride(options), echo handler, recording problem handler. */
async function serve(t: Teardown, options?: MethodOverrideOptions, before: Middleware[] = []): Promise<{ base: string; seen: Seen[] }> {
  const seen: Seen[] = []
  const app = connect()
  for (const m of before) app.use(m)
  app.use(methodOverride(options))
  app.use((req: http.IncomingMessage, res: http.ServerResponse) => {
    const r = req as ConnectRequest
    seen.push({ method: req.method, originalMethod: r.originalMethod, ctxOriginal: contextOf(req).originalMethod })
    res.end(req.method)
  })
  const problems = problemHandler({ log: () => {} })
  app.use((err: unknown, req: http.IncomingMessage, res: http.ServerResponse, next: (e?: unknown) => void) => {
    seen.push({ errorCode: (err as { code?: string }).code })
    problems(err, req, res, next)
  })
  const server = http.createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

t.test('header turns a POST into DELETE and keeps the original method', async (t) => {
  const { base, seen } = await serve(t)
  const r = await request(base, 'POST', '/items/1', { headers: { 'X-HTTP-Method-Override': 'DELETE' } })
  t.equal(r.status, 200)
  t.equal(r.text, 'DELETE')
  t.same(seen[0], { method: 'DELETE', originalMethod: 'POST', ctxOriginal: 'POST' })
  t.equal(r.headers.vary, 'X-HTTP-Method-Override')
})

t.test('query parameter, trimmed and case-insensitive', async (t) => {
  const { base } = await serve(t)
  t.equal((await request(base, 'POST', '/x?_method=patch')).text, 'PATCH')
  t.equal((await request(base, 'POST', '/x?a=1&_method=%20Delete%20&b=2')).text, 'DELETE')
  t.equal((await request(base, 'POST', '/x', { headers: { 'X-HTTP-Method-Override': '  patch ' } })).text, 'PATCH')
  // A percent-encoded parameter name is the same parameter.
  t.equal((await request(base, 'POST', '/x?%5Fmethod=DELETE')).text, 'DELETE')
})

t.test('header wins over query; a repeated _method uses its first value', async (t) => {
  const { base } = await serve(t)
  t.equal((await request(base, 'POST', '/x?_method=DELETE', { headers: { 'X-HTTP-Method-Override': 'PATCH' } })).text, 'PATCH')
  t.equal((await request(base, 'POST', '/x?_method=DELETE&_method=GET')).text, 'DELETE')
})

t.test('absent or empty value means no override', async (t) => {
  const { base, seen } = await serve(t)
  t.equal((await request(base, 'POST', '/x')).text, 'POST')
  t.equal((await request(base, 'POST', '/x?_method=')).text, 'POST')
  t.equal((await request(base, 'POST', '/x?other=_method')).text, 'POST')
  t.equal((await request(base, 'POST', '/x', { headers: { 'X-HTTP-Method-Override': '   ' } })).text, 'POST')
  // An empty header does not hide the query.
  t.equal((await request(base, 'POST', '/x?_method=DELETE', { headers: { 'X-HTTP-Method-Override': '' } })).text, 'DELETE')
  t.equal(seen[0]!.originalMethod, undefined, 'no originalMethod without an override')
  t.equal(seen[0]!.ctxOriginal, undefined)
})

t.test('values outside the allow-list are refused with 405', async (t) => {
  const { base, seen } = await serve(t)
  const refused = ['POST', 'GET', 'head', 'TRACE', 'PUT', 'DELETE, PATCH', 'DEL ETE', 'PATCH\tx']
  for (const value of refused) {
    const r = await request(base, 'POST', '/x', { headers: { 'X-HTTP-Method-Override': value, Accept: 'application/json' } })
    t.equal(r.status, 405, `header ${JSON.stringify(value)}`)
    t.equal(r.headers['content-type'], 'application/problem+json')
    t.match(r.json().detail, /PATCH or DELETE/, 'the detail says what is allowed')
  }
  const q = await request(base, 'POST', '/x?_method=GET', { headers: { Accept: 'application/json' } })
  t.equal(q.status, 405)
  // Two header lines arrive joined as a list, which is refused too.
  const twice = await request(base, 'POST', '/x', { headers: { 'X-HTTP-Method-Override': ['PATCH', 'DELETE'] } })
  t.equal(twice.status, 405)
  t.ok(seen.length > 0 && seen.every((s) => s.errorCode === 'override_not_allowed'))
})

t.test('non-POST requests are never overridden', async (t) => {
  const { base } = await serve(t)
  for (const method of ['GET', 'PUT', 'PATCH', 'DELETE']) {
    const r = await request(base, method, '/x?_method=DELETE', { headers: { 'X-HTTP-Method-Override': 'PATCH' } })
    t.equal(r.text, method)
    t.equal(r.headers.vary, undefined, `${method}: Vary untouched`)
  }
  const bad = await request(base, 'GET', '/x', { headers: { 'X-HTTP-Method-Override': 'TRACE' } })
  t.equal(bad.status, 200, 'an invalid value on GET is ignored, not refused')
})

t.test('Vary is appended once to an existing value', async (t) => {
  const setVary: Middleware = (_req, res, next) => { res.setHeader('Vary', 'Accept'); next() }
  const { base } = await serve(t, undefined, [setVary])
  const r = await request(base, 'POST', '/x', { headers: { 'X-HTTP-Method-Override': 'DELETE' } })
  t.equal(r.headers.vary, 'Accept, X-HTTP-Method-Override')

  const already: Middleware = (_req, res, next) => { res.setHeader('Vary', 'accept, x-http-method-override'); next() }
  const s2 = await serve(t, undefined, [already])
  t.equal((await request(s2.base, 'POST', '/x')).headers.vary, 'accept, x-http-method-override')
})

t.test('an originalMethod set by a framework is kept', async (t) => {
  const preset: Middleware = (req, _res, next) => { (req as ConnectRequest).originalMethod = 'POST'; next() }
  const { base, seen } = await serve(t, undefined, [preset])
  await request(base, 'POST', '/x?_method=DELETE')
  t.equal(seen[0]!.originalMethod, 'POST')
  t.equal(seen[0]!.method, 'DELETE')
})

t.test('options: custom methods, header, query, or one source off', async (t) => {
  const custom = await serve(t, { methods: ['put', 'PATCH'], header: 'X-Method', query: 'm' })
  t.equal((await request(custom.base, 'POST', '/x?m=put')).text, 'PUT')
  t.equal((await request(custom.base, 'POST', '/x', { headers: { 'X-Method': 'patch' } })).text, 'PATCH')
  t.equal((await request(custom.base, 'POST', '/x?_method=PATCH')).text, 'POST', 'the default name is not read')
  t.equal((await request(custom.base, 'POST', '/x?m=DELETE')).status, 405)

  const noHeader = await serve(t, { header: false })
  const r = await request(noHeader.base, 'POST', '/x', { headers: { 'X-HTTP-Method-Override': 'DELETE' } })
  t.equal(r.text, 'POST')
  t.equal(r.headers.vary, undefined, 'no Vary when the header is not consulted')
  t.equal((await request(noHeader.base, 'POST', '/x?_method=DELETE')).text, 'DELETE')

  const noQuery = await serve(t, { query: false })
  t.equal((await request(noQuery.base, 'POST', '/x?_method=DELETE')).text, 'POST')
})

t.test('factory validates options', async (t) => {
  for (const m of ['GET', 'head', 'Connect', 'TRACE']) {
    t.throws(() => methodOverride({ methods: ['PATCH', m] }), TypeError, `${m} can never be a target`)
  }
  t.throws(() => methodOverride({ methods: [] }), /methods/)
  t.throws(() => methodOverride({ methods: ['PAT CH'] }), /methods/)
  t.throws(() => methodOverride({ header: '' }), /header/)
  t.throws(() => methodOverride({ query: 'a b' }), /query/)
  t.throws(() => methodOverride({ header: false, query: false }), TypeError)
  t.throws(() => methodOverride(null as unknown as MethodOverrideOptions), TypeError)
  t.doesNotThrow(() => methodOverride({ methods: ['delete'] }))
})

t.test('works as plain node:http middleware', async (t) => {
  const mw = methodOverride()
  const server = http.createServer((req, res) => {
    mw(req, res, (err) => {
      if (err !== undefined) { res.statusCode = (err as { status: number }).status; res.end(); return }
      res.end(req.method)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.equal((await request(base, 'POST', '/?_method=DELETE')).text, 'DELETE')
  t.equal((await request(base, 'POST', '/?_method=GET')).status, 405)
})
