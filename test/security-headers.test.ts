import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import connect from 'connect'
import { securityHeaders, sendCacheable, entityTag, ifNoneMatchMatches } from '../src/middleware/security-headers.js'
import type { SecurityHeadersOptions } from '../src/middleware/security-headers.js'
import { HttpError, problemHandler } from '../src/middleware/problem.js'
import { request } from './helpers/http.js'

interface Teardown { teardown(fn: () => unknown): void }

async function listen(t: Teardown, handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** securityHeaders(options) then a plain 200 (or a 404 problem on /missing). */
function app(options?: SecurityHeadersOptions): connect.Server {
  const a = connect()
  a.use(securityHeaders(options))
  a.use('/missing', (_req: http.IncomingMessage, _res: http.ServerResponse, next: (e?: unknown) => void) => next(new HttpError(404, 'No such thing.')))
  a.use((_req: http.IncomingMessage, res: http.ServerResponse) => res.end('ok'))
  a.use(problemHandler({ log: () => {} }))
  return a
}

t.test('defaults on reads and writes', async (t) => {
  const base = await listen(t, app())
  const get = await request(base, 'GET', '/')
  t.equal(get.headers['x-content-type-options'], 'nosniff')
  t.equal(get.headers['x-frame-options'], 'DENY')
  t.equal(get.headers['referrer-policy'], 'same-origin')
  t.equal(get.headers['content-security-policy'], "frame-ancestors 'none'")
  t.equal(get.headers['cache-control'], 'private, no-cache')
  t.equal((await request(base, 'HEAD', '/')).headers['cache-control'], 'private, no-cache')
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
    t.equal((await request(base, method, '/')).headers['cache-control'], 'no-store', method)
  }
  const error = await request(base, 'GET', '/missing')
  t.equal(error.status, 404)
  t.equal(error.headers['cache-control'], 'no-store', 'errors are never stored, also on GET')
  t.equal(error.headers['x-frame-options'], 'DENY', 'protective headers survive the error path')
})

t.test('options', async (t) => {
  const same = await request(await listen(t, app({ frameOptions: 'SAMEORIGIN' })), 'GET', '/')
  t.equal(same.headers['x-frame-options'], 'SAMEORIGIN')
  t.equal(same.headers['content-security-policy'], "frame-ancestors 'self'", 'the default CSP follows frameOptions')

  const off = await request(await listen(t, app({ frameOptions: false, referrerPolicy: false, contentSecurityPolicy: false, cacheControl: false })), 'GET', '/')
  t.equal(off.headers['x-frame-options'], undefined)
  t.equal(off.headers['referrer-policy'], undefined)
  t.equal(off.headers['content-security-policy'], undefined)
  t.equal(off.headers['cache-control'], undefined)
  t.equal(off.headers['x-content-type-options'], 'nosniff', 'nosniff is always sent')

  const custom = await request(await listen(t, app({ referrerPolicy: 'no-referrer, strict-origin-when-cross-origin', contentSecurityPolicy: "default-src 'self'" })), 'GET', '/')
  t.equal(custom.headers['referrer-policy'], 'no-referrer, strict-origin-when-cross-origin')
  t.equal(custom.headers['content-security-policy'], "default-src 'self'")
})

t.test('factory validates options', async (t) => {
  const bad: unknown[] = [null, { frameOptions: 'ALLOW-FROM x' }, { frameOptions: true }, { referrerPolicy: 'sometimes' }, { referrerPolicy: '' },
    { contentSecurityPolicy: "default-src 'self'\r\nSet-Cookie: a=b" }, { contentSecurityPolicy: '' }, { cacheControl: 'yes' }]
  for (const options of bad) t.throws(() => securityHeaders(options as SecurityHeadersOptions), TypeError, JSON.stringify(options))
})

t.test('sendCacheable: ETag, caching headers, 304', async (t) => {
  const payload = JSON.stringify({ task: { name: 'nightly', note: 'é' } })
  let status = 200
  const base = await listen(t, (req, res) => {
    if (req.url === '/vary') res.setHeader('Vary', 'Origin, accept')
    const type = req.url === '/vendor' ? 'application/vnd.fcrepo-cloudsync.task+json' : 'application/json'
    sendCacheable(req, res, req.url === '/buffer' ? Buffer.from(payload) : payload, type, status)
  })
  const first = await request(base, 'GET', '/')
  t.equal(first.status, 200)
  t.equal(first.text, payload)
  t.equal(first.headers['content-type'], 'application/json')
  t.equal(first.headers['content-length'], String(Buffer.byteLength(payload)))
  t.equal(first.headers['cache-control'], 'private, no-cache')
  t.equal(first.headers.vary, 'Accept, Authorization, Cookie')
  const etag = first.headers.etag!
  t.match(etag, /^"[A-Za-z0-9_-]+"$/, 'a strong, quoted ETag')
  t.equal((await request(base, 'GET', '/buffer')).headers.etag, etag, 'same bytes and type, same ETag (Buffer or string)')
  t.not((await request(base, 'GET', '/vendor')).headers.etag, etag, 'another media type is another representation')
  t.equal((await request(base, 'GET', '/vary')).headers.vary, 'Origin, accept, Authorization, Cookie', 'Vary merged without duplicates')

  for (const inm of [etag, `W/${etag}`, `"nope", ${etag}`, `"a,b", W/${etag}`, '*', ` ${etag} `]) {
    const r = await request(base, 'GET', '/', { headers: { 'If-None-Match': inm } })
    t.equal(r.status, 304, `If-None-Match: ${inm}`)
    t.equal(r.text, '')
    t.equal(r.headers.etag, etag)
    t.equal(r.headers['cache-control'], 'private, no-cache')
    t.equal(r.headers['content-type'], undefined)
  }
  for (const inm of ['"nope"', etag.slice(0, -2) + '"', 'W/"x"', etag.slice(1, -1), '']) {
    t.equal((await request(base, 'GET', '/', { headers: { 'If-None-Match': inm } })).status, 200, `If-None-Match: ${inm}`)
  }

  const head = await request(base, 'HEAD', '/')
  t.equal(head.status, 200)
  t.equal(head.text, '')
  t.equal(head.headers['content-length'], String(Buffer.byteLength(payload)), 'HEAD has the GET headers')
  t.equal(head.headers.etag, etag)
  t.equal((await request(base, 'HEAD', '/', { headers: { 'If-None-Match': etag } })).status, 304)

  const post = await request(base, 'POST', '/', { headers: { 'If-None-Match': '*' } })
  t.equal(post.status, 200, 'no conditional evaluation for writes')
  t.equal(post.text, payload)
  t.equal(post.headers['cache-control'], 'no-store')

  status = 201
  const created = await request(base, 'GET', '/', { headers: { 'If-None-Match': etag } })
  t.equal(created.status, 201, 'only a 200 becomes 304')
})

t.test('sendCacheable with a precomputed ETag; entityTag is the tag it computes', async (t) => {
  const payload = '{"users":[]}'
  const tag = entityTag('application/json', payload)
  t.match(tag, /^"[A-Za-z0-9_-]{27}"$/, 'a quoted base64url SHA-1')
  t.equal(entityTag('application/json', Buffer.from(payload)), tag, 'the same for a Buffer')
  t.not(entityTag('application/xml', payload), tag, 'the type is part of it')
  const base = await listen(t, (req, res) => {
    if (req.url === '/given') sendCacheable(req, res, payload, 'application/json', 200, '"given-tag"')
    else sendCacheable(req, res, payload, 'application/json')
  })
  t.equal((await request(base, 'GET', '/')).headers.etag, tag)
  const given = await request(base, 'GET', '/given')
  t.equal(given.headers.etag, '"given-tag"', 'a given tag is sent as is')
  t.equal(given.text, payload)
  t.equal((await request(base, 'GET', '/given', { headers: { 'If-None-Match': '"given-tag"' } })).status, 304, 'and is what If-None-Match is compared with')
})

t.test('ifNoneMatchMatches', async (t) => {
  const tag = '"abc"'
  t.ok(ifNoneMatchMatches('"abc"', tag))
  t.ok(ifNoneMatchMatches('W/"abc"', tag))
  t.ok(ifNoneMatchMatches('"x", W/"y" ,"abc"', tag))
  t.ok(ifNoneMatchMatches('*', tag))
  t.notOk(ifNoneMatchMatches(undefined, tag))
  t.notOk(ifNoneMatchMatches('"abcd"', tag))
  t.notOk(ifNoneMatchMatches('"ab"', tag))
  t.notOk(ifNoneMatchMatches('abc', tag))
  t.notOk(ifNoneMatchMatches('"x', tag))
  t.notOk(ifNoneMatchMatches('w/"abc"', tag), 'the weak prefix is case-sensitive')
  t.notOk(ifNoneMatchMatches('"x" junk "abc"', tag), 'a malformed list ends the scan')
})
