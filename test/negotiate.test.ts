import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import connect from 'connect'
import { negotiate, chooseMediaType, sanitizeAccept } from '../src/middleware/negotiate.js'
import type { NegotiateOptions } from '../src/middleware/negotiate.js'
import { formatSuffix } from '../src/middleware/format-suffix.js'
import { contextOf } from '../src/middleware/context.js'
import type { Middleware } from '../src/middleware/context.js'
import { problemHandler } from '../src/middleware/problem.js'
import { request } from './helpers/http.js'

interface Teardown { teardown(fn: () => unknown): void }

const J = 'application/json'
const X = 'application/xml'
const VJ = 'application/vnd.fcrepo-cloudsync.task+json'
const VX = 'application/vnd.fcrepo-cloudsync.task+xml'
const FOUR = [J, X, VJ, VX]

/** connect app: [formatSuffix], negotiate, then echo the chosen type; problems rendered. */
async function serve(t: Teardown, options: NegotiateOptions, before: Middleware[] = []): Promise<{ base: string; codes: string[] }> {
  const codes: string[] = []
  const app = connect()
  for (const m of before) app.use(m)
  app.use(negotiate(options))
  app.use((req: http.IncomingMessage, res: http.ServerResponse) => res.end(String(contextOf(req).responseType)))
  const problems = problemHandler({ log: () => {} })
  app.use((err: unknown, req: http.IncomingMessage, res: http.ServerResponse, next: (e?: unknown) => void) => {
    codes.push(String((err as { code?: unknown }).code))
    problems(err, req, res, next)
  })
  const server = http.createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, codes }
}

function accept(value: string | undefined): { headers: Record<string, string> } {
  return { headers: value === undefined ? {} : { Accept: value } }
}

t.test('Accept negotiation over the four produced types (spec §2.3)', async (t) => {
  const { base } = await serve(t, { produces: FOUR })
  const cases: Array<[string | undefined, string]> = [
    [undefined, J],
    ['', J],
    ['*/*', J],
    ['application/*', J],
    [X, X],
    ['application/xml, application/json', X],
    ['application/json, application/xml', J],
    ['application/json;q=0.5, application/xml', X],
    ['application/xml;q=0.5, application/json;q=0.9', J],
    ['application/json;charset=utf-8', J],
    ['application/json; charset="UTF-8"; q=1', J],
    ['application/xml;charset=utf-8;q=0.9, application/json;q=0.1', X],
    ['APPLICATION/JSON', J],
    [VJ, VJ],
    [`${VX}, ${VJ}`, VX],
    [`${VJ};q=0.9, application/*;q=0.8`, VJ],
    ['application/*;q=0.2, application/vnd.fcrepo-cloudsync.task+xml', VX],
    // A browser: text/html is not produced, XML is explicitly accepted before */*.
    ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', X],
    // Parameter values may hide commas and semicolons in quotes.
    ['application/json;x="a,b;c";q=0.5, application/xml;q=0.4', J]
  ]
  for (const [value, expected] of cases) {
    const r = await request(base, 'GET', '/tasks/1', accept(value))
    t.equal(r.status, 200, `Accept: ${value}`)
    t.equal(r.text, expected, `Accept: ${value}`)
  }
})

t.test('nothing acceptable → 406 naming the produced types', async (t) => {
  const { base, codes } = await serve(t, { produces: FOUR })
  for (const value of ['text/plain', 'application/vnd.fcrepo-cloudsync.tasks+json', 'application/json;q=0', 'image/*']) {
    const r = await request(base, 'GET', '/tasks', { headers: { Accept: value } })
    t.equal(r.status, 406, `Accept: ${value}`)
  }
  const r = await request(base, 'GET', '/tasks', { headers: { Accept: 'text/plain, application/problem+json' } })
  t.equal(r.status, 406)
  t.equal(r.headers['content-type'], 'application/problem+json')
  const detail: string = r.json().detail
  for (const type of FOUR) t.ok(detail.includes(type), `detail lists ${type}`)
  t.ok(codes.every((c) => c === 'not_acceptable'))
})

t.test('malformed Accept never throws', async (t) => {
  const { base } = await serve(t, { produces: FOUR })
  const odd = [';;;', ',,,', 'garbage', 'application/json;q=abc', 'application/json;q', 'application/json;q=0.5"', '"', '*', '/',
    'application/json;a="unterminated', 'a/b;q=0.1;q=0.9, ,application/xml', '\t', 'application/json;;;q=0.5,,,']
  for (const value of odd) {
    const r = await request(base, 'GET', '/x', { headers: { Accept: value } })
    t.ok(r.status === 200 || r.status === 406, `Accept ${JSON.stringify(value)} → ${r.status}`)
  }
  t.equal((await request(base, 'GET', '/x', accept('application/json;;;q=0.5,,,'))).text, J)
  t.equal((await request(base, 'GET', '/x', accept('a/b;q=0.1;q=0.9, ,application/xml'))).text, X)
})

t.test('a recorded suffix replaces Accept', async (t) => {
  const { base } = await serve(t, { produces: FOUR }, [formatSuffix()])
  t.equal((await request(base, 'GET', '/tasks.xml', accept('application/json'))).text, X)
  t.equal((await request(base, 'GET', '/tasks.json', accept('text/plain'))).text, J)
  t.equal((await request(base, 'GET', '/tasks.json', accept(VX))).text, J)

  const content = await serve(t, { produces: ['text/plain; charset=UTF-8'] }, [formatSuffix()])
  const r = await request(content.base, 'GET', '/taskLogs/9/content.json', accept('text/plain'))
  t.equal(r.status, 406, 'the suffix type must be produced')
  t.equal(r.headers['content-type'], 'application/problem+json', 'the error itself follows the suffix')
  t.match(r.json().detail, /\.json suffix/)
  t.equal((await request(content.base, 'GET', '/taskLogs/9/content', accept('text/plain'))).text, 'text/plain; charset=UTF-8')
})

t.test('produced types with parameters and per-request lists', async (t) => {
  const { base } = await serve(t, {
    produces: (req) => {
      const header = req.headers['x-produces']
      return typeof header === 'string' ? header.split(' ').filter(Boolean) : []
    }
  })
  const both = { 'X-Produces': `${J} ${X}` }
  t.equal((await request(base, 'GET', '/', { headers: { ...both, Accept: X } })).text, X)
  // Same Accept, different list: the cache must not return the first answer.
  t.equal((await request(base, 'GET', '/', { headers: { 'X-Produces': J, Accept: X } })).status, 406)
  t.equal((await request(base, 'GET', '/', { headers: { 'X-Produces': `${VX} ${X}`, Accept: X } })).text, X)
  t.equal((await request(base, 'GET', '/', { headers: { 'X-Produces': `${VX} ${X}` } })).text, VX, 'first produced type by default')
  const none = await request(base, 'GET', '/', { headers: { Accept: 'text/plain' } })
  t.equal(none.status, 200, 'an empty list (no body to send) is never 406')
  t.equal(none.text, 'undefined')
})

t.test('many distinct Accept values stay correct (bounded cache)', async (t) => {
  const { base } = await serve(t, { produces: [J, X] })
  for (let i = 0; i < 300; i++) {
    const prefer = i % 2 === 0 ? X : J
    const other = prefer === X ? J : X
    const r = await request(base, 'GET', '/', accept(`${prefer};q=0.9, ${other};q=0.${i % 9}, x/y${i}`))
    if (r.text !== prefer) t.fail(`request ${i}: ${r.text}`)
  }
  t.equal((await request(base, 'GET', '/', accept(`${J};q=0.9, ${X};q=0.1, x/y1`))).text, J)
})

t.test('chooseMediaType and sanitizeAccept as functions', async (t) => {
  const server = http.createServer((req, res) => {
    res.end(JSON.stringify([chooseMediaType(req, FOUR) ?? null, chooseMediaType(req, []) ?? null, chooseMediaType(req, [X]) ?? null]))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.same((await request(base, 'GET', '/', accept(VJ))).json(), [VJ, null, null])
  t.same((await request(base, 'GET', '/', accept('application/*'))).json(), [J, null, X])

  t.equal(sanitizeAccept('application/json'), 'application/json')
  t.equal(sanitizeAccept('application/json;charset=utf-8;q=0.5;level=1'), 'application/json;q=0.5')
  t.equal(sanitizeAccept('a/b;x="1,2;3";q=0.3, c/d ;Q=1'), 'a/b;q=0.3,c/d;q=1')
  t.equal(sanitizeAccept('a/b;q="0.4"'), 'a/b;q=0.4')
  t.equal(sanitizeAccept('a/b;q=1,x/y, c/d'), 'a/b;q=1,x/y,c/d')
  t.equal(sanitizeAccept('a/b;q="1,c/d"'), 'a/b;q=0', 'a q that is not a number cannot inject ranges')
})

t.test('factory validates options', async (t) => {
  const bad: unknown[] = [undefined, null, {}, { produces: [] }, { produces: 'application/json' }, { produces: ['json'] }, { produces: [J, 7] }]
  for (const options of bad) t.throws(() => negotiate(options as NegotiateOptions), TypeError, JSON.stringify(options))
  t.doesNotThrow(() => negotiate({ produces: ['text/plain; charset=UTF-8'] }))
})
