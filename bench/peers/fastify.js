/**
 * Peer 4: Fastify 5 with an `onRequest` Basic check. Fastify routes before
 * hooks run, so the `_method` override is a POST route that hands over to
 * the PATCH handler.
 */
import { timingSafeEqual } from 'node:crypto'
import Fastify from 'fastify'
import { ADMIN, CHALLENGE, objectSet, setChanges, unauthorized, usersList, usersXml } from './fixture.js'

const EXPECTED = Buffer.from(`${ADMIN.name}:${ADMIN.password}`)

function authorized(header) {
  if (header === undefined || !header.startsWith('Basic ')) return false
  const given = Buffer.from(header.slice(6), 'base64')
  return given.length === EXPECTED.length && timingSafeEqual(given, EXPECTED)
}

const app = Fastify({ logger: false, keepAliveTimeout: 5_000 })
app.addHook('onRequest', (request, reply, done) => {
  if (authorized(request.headers.authorization)) return done()
  const q = request.url.indexOf('?')
  reply.code(401).header('WWW-Authenticate', CHALLENGE).header('Cache-Control', 'no-store')
    .type('application/problem+json').send(JSON.stringify(unauthorized(q === -1 ? request.url : request.url.slice(0, q))))
})

app.get('/api/rest/users.json', (request, reply) => {
  reply.header('Cache-Control', 'private, no-cache').send(usersList(request.headers.host, '.json'))
})
app.get('/api/rest/users.xml', (request, reply) => {
  reply.header('Cache-Control', 'private, no-cache').type('application/xml').send(usersXml(request.headers.host))
})

function patchSet(request, reply) {
  const changes = setChanges(request.body)
  if (changes === undefined) return reply.code(400).send('Send {"objectSet":{…}} as JSON.')
  reply.header('Cache-Control', 'no-store').send(objectSet(request.headers.host, changes))
}
const idParams = { params: { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9]{1,15}$' } } } }
app.patch('/api/rest/objectSets/:id', { schema: idParams }, patchSet)
app.post('/api/rest/objectSets/:id', { schema: idParams }, (request, reply) => {
  const override = request.query._method
  if (typeof override === 'string' && override.trim().toUpperCase() === 'PATCH') return patchSet(request, reply)
  reply.code(405).header('Allow', 'PATCH').send('Use PATCH (or POST with ?_method=PATCH).')
})

const port = Number(process.env.PORT ?? 0)
await app.listen({ port, host: '127.0.0.1' })
console.log(`fastify listening on http://127.0.0.1:${app.server.address().port}/`)
const stop = () => {
  setTimeout(() => process.exit(0), 2_000).unref()
  app.close().then(() => process.exit(0))
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
