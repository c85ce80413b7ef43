import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import connect from 'connect'
import { HttpError, renderProblem, acceptsJson, acceptsXml, problemHandler, notFound } from '../src/middleware/problem.js'
import type { ProblemHandlerOptions } from '../src/middleware/problem.js'
import { contextOf } from '../src/middleware/context.js'
import { formatSuffix } from '../src/middleware/format-suffix.js'
import { request } from './helpers/http.js'

t.test('HttpError keeps status and code', async (t) => {
  const e = new HttpError(405, 'Use GET.', { headers: { Allow: 'GET' } })
  t.equal(e.status, 405)
  t.equal(e.code, 'method_not_allowed')
  t.same(e.headers, { Allow: 'GET' })
})

t.test('accept families', async (t) => {
  t.ok(acceptsJson(undefined))
  t.ok(acceptsJson('*/*'))
  t.notOk(acceptsXml('*/*'))
  t.ok(acceptsXml('application/vnd.fcrepo-cloudsync.task+xml'))
  t.notOk(acceptsJson('text/html'))
})

t.test('xml escapes', async (t) => {
  const { body } = renderProblem({ type: 'about:blank', title: 'Bad Request', status: 400, detail: '<x>&', instance: '/a' }, 'xml')
  t.match(body, /&#60;x&#62;&#38;/)
})

// ---------------------------------------------------------------------------
// problemHandler() through real HTTP

interface Teardown { teardown(fn: () => unknown): void }

/**
 * Routes: /fail/<status> raises an HttpError (with Allow on 405),
 * /throw throws a plain Error, /script raises an exposed 400 with markup in
 * its message, /sent fails after the body started, /etag fails after
 * setting representation headers, /fmt/<sfx> records a format, anything
 * else is a 404 from notFound().
 */
async function serve(t: Teardown, options: ProblemHandlerOptions = {}): Promise<{ base: string; logged: unknown[] }> {
  const logged: unknown[] = []
  const app = connect()
  app.use(formatSuffix())
  app.use('/fmt', (req: http.IncomingMessage, _res: http.ServerResponse, next: (e?: unknown) => void) => {
    const suffix = req.url!.slice(1).split('?')[0]!
    contextOf(req).format = { suffix, type: suffix === '.xml' ? 'application/xml' : 'application/json' }
    next(new HttpError(409, 'Task name is already in use; choose another name.'))
  })
  app.use('/fail', (req: http.IncomingMessage, _res: http.ServerResponse, next: (e?: unknown) => void) => {
    const status = Number(req.url!.slice(1).split(/[/?.]/)[0])
    next(new HttpError(status, 'Use GET or POST on this resource.', status === 405 ? { headers: { Allow: 'GET, HEAD, POST' } } : {}))
  })
  app.use('/throw', () => { throw new Error('db exploded at /var/lib/secret.db <script>alert(1)</script>') })
  app.use('/script', (_req: http.IncomingMessage, _res: http.ServerResponse, next: (e?: unknown) => void) => {
    next(Object.assign(new Error('bad <script>alert(1)</script> & "quotes"'), { status: 400, expose: true }))
  })
  app.use('/hidden', (_req: http.IncomingMessage, _res: http.ServerResponse, next: (e?: unknown) => void) => {
    next(Object.assign(new Error('password=hunter2 <script>'), { statusCode: 422 }))
  })
  app.use('/sent', (_req: http.IncomingMessage, res: http.ServerResponse, next: (e?: unknown) => void) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' })
    res.write('partial')
    setTimeout(() => next(new Error('late failure')), 10)
  })
  app.use('/etag', (_req: http.IncomingMessage, res: http.ServerResponse, next: (e?: unknown) => void) => {
    res.setHeader('ETag', '"abc"')
    res.setHeader('Content-Location', '/x')
    next(new HttpError(400, 'Bad input.'))
  })
  app.use(notFound())
  app.use(problemHandler({ log: (err) => { logged.push(err) }, ...options }))
  const server = http.createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, logged }
}

t.test('problem representation is negotiated (spec §1.4)', async (t) => {
  const { base } = await serve(t)
  const cases: Array<[string | undefined, string]> = [
    [undefined, 'application/problem+json'],
    ['*/*', 'application/problem+json'],
    ['application/json', 'application/problem+json'],
    ['application/problem+json', 'application/problem+json'],
    ['application/vnd.fcrepo-cloudsync.task+json', 'application/problem+json'],
    ['application/xml', 'application/problem+xml'],
    ['application/vnd.fcrepo-cloudsync.task+xml', 'application/problem+xml'],
    ['text/html', 'text/plain; charset=UTF-8'],
    ['text/plain', 'text/plain; charset=UTF-8'],
    ['application/json;q=0, application/xml', 'application/problem+xml']
  ]
  for (const [accept, type] of cases) {
    const r = await request(base, 'GET', '/fail/400', { headers: accept === undefined ? {} : { Accept: accept } })
    t.equal(r.status, 400)
    t.equal(r.headers['content-type'], type, `Accept: ${accept}`)
  }
  const json = (await request(base, 'GET', '/fail/400?secret=1')).json()
  t.same(json, { type: 'about:blank', title: 'Bad Request', status: 400, detail: 'Use GET or POST on this resource.', instance: '/fail/400' })

  const xml = await request(base, 'GET', '/fail/404', { headers: { Accept: 'application/xml' } })
  t.equal(xml.text, '<?xml version="1.0" encoding="UTF-8"?><problem xmlns="urn:ietf:rfc:7807"><type>about:blank</type><title>Not Found</title>' +
    '<status>404</status><detail>Use GET or POST on this resource.</detail><instance>/fail/404</instance></problem>')
  const text = await request(base, 'GET', '/fail/404', { headers: { Accept: 'text/html' } })
  t.equal(text.text, '404 Not Found: Use GET or POST on this resource.\n')
})

t.test('a recorded suffix forces the problem format', async (t) => {
  const { base } = await serve(t)
  const xml = await request(base, 'GET', '/fmt/.xml', { headers: { Accept: 'application/json' } })
  t.equal(xml.status, 409)
  t.equal(xml.headers['content-type'], 'application/problem+xml')
  const json = await request(base, 'GET', '/fmt/.json', { headers: { Accept: 'text/plain' } })
  t.equal(json.headers['content-type'], 'application/problem+json')
  t.equal(json.json().instance, '/fmt/.json')
  // Through the real format-suffix piece: instance keeps the path the client sent.
  const real = await request(base, 'GET', '/nowhere/tasks.xml?x=1', { headers: { Accept: 'application/json' } })
  t.equal(real.status, 404)
  t.equal(real.headers['content-type'], 'application/problem+xml')
  t.match(real.text, /<instance>\/nowhere\/tasks\.xml<\/instance>/)
})

t.test('no stack traces and no unescaped input', async (t) => {
  const { base, logged } = await serve(t)
  for (const accept of ['application/json', 'application/xml', 'text/plain']) {
    const r = await request(base, 'GET', '/throw', { headers: { Accept: accept } })
    t.equal(r.status, 500, accept)
    t.notMatch(r.text, /script|secret|exploded|at \/|\.ts:\d/, `${accept}: nothing of the error leaks`)
    t.match(r.text, /failure has been logged/)
  }
  t.equal(logged.length, 3, 'every 500 is logged')
  t.match((logged[0] as Error).message, /db exploded/, 'the log gets the real error')

  const xml = await request(base, 'GET', '/script', { headers: { Accept: 'application/xml' } })
  t.equal(xml.status, 400)
  t.notMatch(xml.text, /<script>/, 'markup is escaped in XML')
  t.match(xml.text, /&#60;script&#62;/)
  const json = await request(base, 'GET', '/script', { headers: { Accept: 'application/json' } })
  t.equal(json.json().detail, 'bad <script>alert(1)</script> & "quotes"', 'JSON carries it as a string')
  t.equal(json.headers['x-content-type-options'], 'nosniff', 'and is never sniffed as HTML')

  const hidden = await request(base, 'GET', '/hidden', { headers: { Accept: 'application/json' } })
  t.equal(hidden.status, 422)
  t.equal(hidden.json().detail, 'Unprocessable Entity.', 'errors that do not declare themselves safe keep their message private')
  t.equal(logged.length, 3, '4xx are not logged')

  const odd = await request(base, 'GET', '/nowhere/%3Cscript%3E/<b>"x"', { headers: { Accept: 'application/json' } })
  t.equal(odd.status, 404)
  t.notMatch(odd.json().instance, /[<>"]/, 'instance is percent-encoded')
})

t.test('headers: HttpError.headers, no-store, nosniff, representation headers dropped', async (t) => {
  const { base } = await serve(t)
  const r = await request(base, 'PUT', '/fail/405')
  t.equal(r.status, 405)
  t.equal(r.headers.allow, 'GET, HEAD, POST')
  t.equal(r.headers['cache-control'], 'no-store')
  t.equal(r.headers['x-content-type-options'], 'nosniff')
  t.equal(r.headers['content-length'], String(Buffer.byteLength(r.text)))
  const e = await request(base, 'GET', '/etag')
  t.equal(e.status, 400)
  t.equal(e.headers.etag, undefined)
  t.equal(e.headers['content-location'], undefined)
})

t.test('HEAD gets the headers without a body', async (t) => {
  const { base } = await serve(t)
  const r = await request(base, 'HEAD', '/fail/404')
  t.equal(r.status, 404)
  t.equal(r.text, '')
  t.equal(r.headers['content-type'], 'application/problem+json')
  t.ok(Number(r.headers['content-length']) > 0, 'Content-Length of the GET body')
})

t.test('a failure after the body started ends the connection', async (t) => {
  const { base, logged } = await serve(t)
  const outcome = await request(base, 'GET', '/sent').then((r) => `complete ${r.status}`, (err: Error) => `error ${err.message}`)
  t.notMatch(outcome, /complete 500/, 'no second status line is attempted')
  t.equal(logged.length, 1)
})

t.test('internalDetail option and option checks', async (t) => {
  const { base } = await serve(t, { internalDetail: 'Something broke; try again in a minute.' })
  t.equal((await request(base, 'GET', '/throw')).json().detail, 'Something broke; try again in a minute.')
  t.throws(() => problemHandler({ log: 'console' as unknown as ProblemHandlerOptions['log'] }), TypeError)
  t.throws(() => problemHandler({ internalDetail: 5 as unknown as string }), TypeError)
})
