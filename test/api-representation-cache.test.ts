/**
 * Reused representations: the users list is serialized once per backend
 * state, media type and link base. Whatever is reused, every answer must be
 * exactly the one a fresh serialization would give. Real server over HTTP.
 */
import t from 'tap'
import { startTestServer, jsonBody } from './helpers/server.js'
import { serializedFor } from '../src/resources/representation-cache.js'
import { entityTag } from '../src/middleware/security-headers.js'

const USERS_JSON = 'application/vnd.fcrepo-cloudsync.users+json'

t.test('the users list: same state, same bytes and ETag; any change shows at once', async (t) => {
  const s = await startTestServer(t)
  const first = await s.admin('GET', '/api/rest/users.json')
  const again = await s.admin('GET', '/api/rest/users.json')
  t.equal(first.status, 200)
  t.equal(again.text, first.text)
  t.equal(again.headers.etag, first.headers.etag)
  t.equal(first.headers.etag, entityTag('application/json', first.text), 'the ETag is the one a fresh serialization gets')
  const notModified = await s.admin('GET', '/api/rest/users.json', { headers: { 'If-None-Match': String(first.headers.etag) } })
  t.equal(notModified.status, 304)

  const created = await s.admin('POST', '/api/rest/users', jsonBody({ user: { name: 'bob', password: 'pw', admin: false, enabled: true } }))
  t.equal(created.status, 201)
  const afterCreate = await s.admin('GET', '/api/rest/users.json')
  t.same(afterCreate.json().users.map((u: { name: string }) => u.name), ['admin', 'bob'])
  t.not(afterCreate.headers.etag, first.headers.etag)
  const stale = await s.admin('GET', '/api/rest/users.json', { headers: { 'If-None-Match': String(first.headers.etag) } })
  t.equal(stale.status, 200, 'the old ETag no longer matches')

  const bobUri = String(created.headers.location)
  const renamed = await s.admin('PATCH', bobUri, jsonBody({ user: { name: 'robert' } }))
  t.equal(renamed.status, 200)
  t.same((await s.admin('GET', '/api/rest/users.json')).json().users.map((u: { name: string }) => u.name), ['admin', 'robert'])
  t.equal((await s.admin('DELETE', bobUri)).status, 204)
  const afterDelete = await s.admin('GET', '/api/rest/users.json')
  t.equal(afterDelete.text, first.text, 'back to the first state: the first bytes')
})

t.test('each media type, suffix and link base gets its own bytes', async (t) => {
  const s = await startTestServer(t)
  const host = new URL(s.base).host
  const plain = await s.admin('GET', '/api/rest/users.json')
  const xml = await s.admin('GET', '/api/rest/users.xml')
  const vendor = await s.admin('GET', '/api/rest/users', { headers: { Accept: USERS_JSON } })
  t.match(xml.headers['content-type'], /^application\/xml/)
  t.match(xml.text, /^<\?xml[\s\S]*<users>[\s\S]*users\/1\.xml/)
  t.equal(vendor.headers['content-type'], USERS_JSON)
  t.match(vendor.json().users[0].uri, /\/users\/1$/, 'no suffix on vendor links')
  t.match(plain.json().users[0].uri, /\/users\/1\.json$/)
  t.equal(new Set([plain.headers.etag, xml.headers.etag, vendor.headers.etag]).size, 3)

  // More link bases than are kept per state: every answer still names its own host.
  for (let i = 0; i < 40; i++) {
    const other = `host-${i}.example:8080`
    const r = await s.admin('GET', '/api/rest/users.json', { headers: { Host: other } })
    t.equal(r.json().users[0].uri, `http://${other}/api/rest/users/1.json`)
  }
  const back = await s.admin('GET', '/api/rest/users.json', { headers: { Host: host } })
  t.equal(back.text, plain.text)
  t.equal(back.headers.etag, plain.headers.etag)
})

t.test('serializedFor keeps only frozen sources', async (t) => {
  let builds = 0
  const build = () => `body ${++builds}`
  const frozen = Object.freeze([1, 2])
  const a = serializedFor(frozen, 'application/json', 'k', build)
  const b = serializedFor(frozen, 'application/json', 'k', build)
  t.equal(b, a, 'a frozen source is serialized once per key')
  t.equal(a.etag, entityTag('application/json', a.text))
  t.not(serializedFor(frozen, 'application/xml', 'k', build).text, a.text, 'another media type is another entry')
  t.not(serializedFor(frozen, 'application/json', 'k2', build).text, a.text, 'another link key is another entry')
  const mutable = [1, 2]
  const c = serializedFor(mutable, 'application/json', 'k', build)
  const d = serializedFor(mutable, 'application/json', 'k', build)
  t.not(d.text, c.text, 'a value that could change is serialized every time')
})
