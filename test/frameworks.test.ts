/**
 * The request-shaping pieces work unchanged in Express 5 and in Fastify 5
 * (through @fastify/middie), over real HTTP.
 */
import t from 'tap'
import type { AddressInfo } from 'node:net'
import type http from 'node:http'
import express from 'express'
import Fastify from 'fastify'
import middie from '@fastify/middie'
import connect from 'connect'
import { methodOverride } from '../src/middleware/method-override.js'
import { formatSuffix, currentSuffix, withSuffix } from '../src/middleware/format-suffix.js'
import { negotiate } from '../src/middleware/negotiate.js'
import { body } from '../src/middleware/body.js'
import { securityHeaders, sendCacheable } from '../src/middleware/security-headers.js'
import { problemHandler, sendProblem } from '../src/middleware/problem.js'
import { contextOf } from '../src/middleware/context.js'
import type { ConnectRequest } from '../src/middleware/context.js'
import { request } from './helpers/http.js'

const J = 'application/json'
const X = 'application/xml'
const VJ = 'application/vnd.fcrepo-cloudsync.task+json'
const VX = 'application/vnd.fcrepo-cloudsync.task+xml'
const TYPES = [J, X, VJ, VX]

/** Render a small task representation in the negotiated type. */
function render(type: string, task: Record<string, string>): string {
  if (type.endsWith('json')) return JSON.stringify({ task })
  return `<task>${Object.entries(task).map(([k, v]) => `<${k}>${v}</${k}>`).join('')}</task>`
}

t.test('Express 5: app.use(piece) as with any Connect middleware', async (t) => {
  const logged: unknown[] = []
  const app = express()
  app.use(securityHeaders())
  app.use(formatSuffix())
  app.use(methodOverride())
  app.use(negotiate({ produces: TYPES }))
  app.use(body({ consumes: TYPES }))
  app.get('/tasks/:id', (req, res) => {
    const task = { id: req.params.id, uri: withSuffix(req, `/tasks/${req.params.id}`) }
    sendCacheable(req, res, render(contextOf(req).responseType!, task), contextOf(req).responseType!)
  })
  app.patch('/tasks/:id', (req, res) => {
    res.json({ id: req.params.id, body: req.body, original: (req as ConnectRequest).originalMethod, suffix: currentSuffix(req), type: contextOf(req).responseType })
  })
  app.delete('/tasks/:id', (req, res) => { res.status(204).end() })
  app.use(problemHandler({ log: (err) => { logged.push(err) } }))

  const server = app.listen(0, '127.0.0.1')
  await new Promise<void>((resolve) => server.once('listening', () => resolve()))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const get = await request(base, 'GET', '/tasks/3.xml', { headers: { Accept: J } })
  t.equal(get.status, 200)
  t.equal(get.headers['content-type'], X, 'the suffix decided the type')
  t.equal(get.text, '<task><id>3</id><uri>/tasks/3.xml</uri></task>', 'Express routed the stripped path; links keep the suffix')
  t.equal(get.headers['x-frame-options'], 'DENY')
  t.equal(get.headers['cache-control'], 'private, no-cache')
  const again = await request(base, 'GET', '/tasks/3.xml', { headers: { 'If-None-Match': get.headers.etag! } })
  t.equal(again.status, 304)

  const patch = await request(base, 'POST', '/tasks/3.json?_method=PATCH', {
    headers: { 'Content-Type': VX, Accept: VJ },
    body: '<task><name> nightly </name></task>'
  })
  t.equal(patch.status, 200)
  t.same(patch.json(), { id: '3', body: { task: { name: ' nightly ' } }, original: 'POST', suffix: '.json', type: J })
  t.equal(patch.headers['cache-control'], 'no-store', 'decided on the method the client sent')

  const del = await request(base, 'POST', '/tasks/3', { headers: { 'X-HTTP-Method-Override': 'DELETE' } })
  t.equal(del.status, 204, 'the overridden method reaches app.delete')

  const refused = await request(base, 'POST', '/tasks/3?_method=GET', { headers: { Accept: J } })
  t.equal(refused.status, 405)
  t.equal(refused.headers['content-type'], 'application/problem+json')
  const notAcceptable = await request(base, 'GET', '/tasks/3', { headers: { Accept: 'text/csv' } })
  t.equal(notAcceptable.status, 406)
  t.equal(notAcceptable.headers['content-type'], 'text/plain; charset=UTF-8')
  const unsupported = await request(base, 'PATCH', '/tasks/3', { headers: { 'Content-Type': 'text/plain' }, body: 'x' })
  t.equal(unsupported.status, 415)
  const malformed = await request(base, 'PATCH', '/tasks/3.xml', { headers: { 'Content-Type': VJ }, body: '{"task":' })
  t.equal(malformed.status, 400)
  t.equal(malformed.headers['content-type'], 'application/problem+xml')
  t.same(logged, [], 'client errors are not logged as failures')
})

t.test('Fastify 5 + @fastify/middie: fastify.use(piece)', async (t) => {
  const fastify = Fastify()
  t.teardown(() => fastify.close())
  await fastify.register(middie)
  fastify.use(securityHeaders())
  fastify.use(formatSuffix())
  fastify.use(methodOverride())
  fastify.use(negotiate({ produces: TYPES }))
  fastify.use(body({ consumes: TYPES }))
  // The pieces read the body in onRequest; Fastify's own parser must then leave the stream alone.
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined))
  fastify.setErrorHandler((err, request, reply) => {
    reply.hijack()
    sendProblem(err, request.raw, reply.raw)
  })
  // Fastify routes before middleware runs, so the route sees the original
  // path; the pieces' decisions are on the context of the raw request.
  fastify.all('/tasks/*', async (request) => {
    const ctx = contextOf(request.raw)
    return { method: request.raw.method, original: ctx.originalMethod ?? null, format: ctx.format ?? null, type: ctx.responseType, body: ctx.body ?? null }
  })
  await fastify.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`

  const r = await request(base, 'POST', '/tasks/3.xml?_method=PATCH', {
    headers: { 'Content-Type': `${VJ}; charset=utf-8`, Accept: J },
    body: '{"task":{"state":"Starting"}}'
  })
  t.equal(r.status, 200)
  t.same(r.json(), {
    method: 'PATCH', original: 'POST', format: { suffix: '.xml', type: X }, type: X, body: { task: { state: 'Starting' } }
  })
  t.equal(r.headers['x-content-type-options'], 'nosniff')
  t.equal(r.headers['cache-control'], 'no-store')

  const refused = await request(base, 'POST', '/tasks/3', { headers: { 'X-HTTP-Method-Override': 'TRACE', Accept: J, 'Content-Type': J }, body: '{}' })
  t.equal(refused.status, 405)
  t.equal(refused.headers['content-type'], 'application/problem+json')
  const tooDeep = await request(base, 'POST', '/tasks/3', { headers: { 'Content-Type': X, Accept: X }, body: '<a>'.repeat(40) + '</a>'.repeat(40) })
  t.equal(tooDeep.status, 400)
  t.equal(tooDeep.headers['content-type'], 'application/problem+xml')
  const notAcceptable = await request(base, 'GET', '/tasks/3', { headers: { Accept: 'image/png' } })
  t.equal(notAcceptable.status, 406)
})

t.test('Fastify 5 + @fastify/middie: a Connect app of pieces mounted with fastify.use(prefix, app)', async (t) => {
  // Inside one Connect app the pieces also steer routing (stripped suffix, overridden method).
  const api = connect()
  api.use(formatSuffix())
  api.use(methodOverride())
  api.use(negotiate({ produces: TYPES }))
  api.use(body({ consumes: TYPES }))
  api.use((req: http.IncomingMessage, res: http.ServerResponse, next: (err?: unknown) => void) => {
    const m = /^\/tasks\/(\d+)(\?|$)/.exec(req.url ?? '')
    if (m === null) return next()
    if (req.method === 'DELETE') {
      res.statusCode = 204
      res.end()
      return
    }
    const type = contextOf(req).responseType!
    sendCacheable(req, res, render(type, { id: m[1]!, uri: withSuffix(req, `/api/tasks/${m[1]}`) }), type)
  })
  api.use(problemHandler({ log: () => {} }))

  const fastify = Fastify()
  t.teardown(() => fastify.close())
  await fastify.register(middie)
  fastify.use('/api', api)
  await fastify.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}`

  const get = await request(base, 'GET', '/api/tasks/7.json')
  t.equal(get.status, 200)
  t.same(get.json(), { task: { id: '7', uri: '/api/tasks/7.json' } })
  t.equal((await request(base, 'GET', '/api/tasks/7', { headers: { Accept: VX } })).text, '<task><id>7</id><uri>/api/tasks/7</uri></task>')
  t.equal((await request(base, 'POST', '/api/tasks/7?_method=DELETE')).status, 204)
  const missing = await request(base, 'GET', '/api/nothing.xml')
  t.equal(missing.status, 404, "unknown paths fall through to Fastify's 404")
})
