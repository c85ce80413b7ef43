import t from 'tap'
import { startTestServer, ADMIN, jsonBody } from './helpers/server.js'
import { vj, vx } from './helpers/media.js'

const BOB: [string, string] = ['bob', 'bob-pass']

t.test('users: create, read, permissions, delete (spec §4.3)', async (t) => {
  const s = await startTestServer(t)

  // Create a non-admin with the body the UI sends (§3.13).
  let r = await s.admin('POST', '/api/rest/users', jsonBody({ user: { name: 'bob', password: 'bob-pass', enabled: true, admin: false } }, vj('user'), vj('user')))
  t.equal(r.status, 201)
  t.equal(r.headers['content-type'], vj('user'))
  const bob = r.json().user
  t.same(Object.keys(bob), ['admin', 'enabled', 'name', 'uri'], 'alphabetical fields, no password')
  t.equal(r.headers.location, bob.uri)
  t.match(bob.uri, new RegExp(`^${s.api}/users/\\d+$`))
  const bobPath = new URL(bob.uri).pathname

  r = await s.admin('POST', '/api/rest/users.json', jsonBody({ user: { name: '2012', password: 'x', enabled: 'true', admin: 'false' } }))
  t.equal(r.status, 201)
  t.equal(r.json().user.name, '2012', 'numeric-looking names stay strings [D21]')
  t.match(r.headers.location, /\.json$/, 'Location carries the suffix')

  r = await s.admin('POST', '/api/rest/users', jsonBody({ user: { name: 'bob', password: 'p', enabled: true, admin: false } }))
  t.equal(r.status, 409, 'name taken')
  t.equal(r.headers['content-type'], 'application/problem+json')

  for (const [body, why] of [
    [{ user: { name: 'carol', password: 'p', enabled: true } }, 'admin missing'],
    [{ user: { name: 'carol', password: 'p', enabled: true, admin: 'yes' } }, 'admin not boolean'],
    [{ user: { name: 'carol', password: '', enabled: true, admin: false } }, 'empty password [D15]'],
    [{ user: { name: 'carol', enabled: true, admin: false } }, 'password missing'],
    [{ user: { name: '   ', password: 'p', enabled: true, admin: false } }, 'blank name'],
    [{ user: { name: 'x'.repeat(65), password: 'p', enabled: true, admin: false } }, 'name too long'],
    [{ user: { id: '7', name: 'carol', password: 'p', enabled: true, admin: false } }, 'id given'],
    [{ users: { name: 'carol' } }, 'wrong root']
  ] as const) {
    r = await s.admin('POST', '/api/rest/users', jsonBody(body))
    t.equal(r.status, 400, why)
  }

  // XML create with the plain type.
  r = await s.admin('POST', '/api/rest/users', { headers: { 'Content-Type': 'application/xml', Accept: 'application/xml' }, body: '<user><admin>false</admin><enabled>true</enabled><name>dave</name><password> spaced </password></user>' })
  t.equal(r.status, 201)
  t.match(r.text, /<user><admin>false<\/admin><enabled>true<\/enabled><name>dave<\/name><uri>[^<]+<\/uri><\/user>/)
  t.equal((await s.as(['dave', ' spaced '], 'GET', '/api/rest/users/current')).status, 200, 'password is not trimmed')

  // Non-admin cannot create users, even with an unparsable body (403 before 400, §1.4).
  r = await s.as(BOB, 'POST', '/api/rest/users', { headers: { 'Content-Type': 'application/json' }, body: '{nope' })
  t.equal(r.status, 403)

  // Current user.
  r = await s.as(BOB, 'GET', '/api/rest/users/current.xml')
  t.equal(r.status, 200)
  t.equal(r.headers['content-type'], 'application/xml')
  t.equal(r.headers['content-location'], bob.uri + '.xml')
  r = await s.as(BOB, 'PATCH', '/api/rest/users/current', jsonBody({ user: { name: 'x' } }))
  t.equal(r.status, 405)
  t.match(r.headers.allow, /GET/)

  // Lists.
  r = await s.as(BOB, 'GET', '/api/rest/users', { headers: { Accept: vj('users') } })
  t.equal(r.status, 200)
  t.same(r.json().users.map((u: { name: string }) => u.name), ['admin', 'bob', '2012', 'dave'], 'ascending id')
  r = await s.as(BOB, 'GET', '/api/rest/users', { headers: { Accept: vj('user') } })
  t.equal(r.status, 406, 'single-item type on a list')
  r = await s.as(BOB, 'GET', '/api/rest/users/999999', { headers: { Accept: 'text/plain' } })
  t.equal(r.status, 406, '406 before 404')
  r = await s.as(BOB, 'GET', '/api/rest/users/999999')
  t.equal(r.status, 404)
  r = await s.as(BOB, 'GET', '/api/rest/users/abc')
  t.equal(r.status, 404, 'non-numeric id [D10]')
})

t.test('user PATCH permission table (spec §4.3)', async (t) => {
  const s = await startTestServer(t)
  const create = async (name: string, admin: boolean) => {
    const r = await s.admin('POST', '/api/rest/users', jsonBody({ user: { name, password: `${name}-pass`, enabled: true, admin } }))
    t.equal(r.status, 201)
    return new URL(r.json().user.uri).pathname
  }
  const bobPath = await create('bob', false)
  const eve = await create('eve', true)
  const carolPath = await create('carol', false)
  const adminPath = new URL((await s.admin('GET', '/api/rest/users/current')).json().user.uri).pathname
  const patch = (who: [string, string], path: string, user: object) => s.as(who, 'PATCH', path, jsonBody({ user }, vj('user'), vj('user')))

  // Admin on another user: any field.
  t.equal((await patch(ADMIN, bobPath, { enabled: 'false' })).status, 200)
  t.equal((await s.as(['bob', 'bob-pass'], 'GET', '/api/rest/users/current')).status, 401, 'disabled user loses access at once [D16]')
  t.equal((await patch(ADMIN, bobPath, { enabled: 'true', admin: 'true' })).status, 200)
  const promoted = await patch(ADMIN, bobPath, { admin: 'false' })
  t.equal(promoted.status, 200)
  t.same(promoted.json().user.admin, false)
  // Admin on self.
  t.equal((await patch(ADMIN, adminPath, { enabled: false })).status, 403)
  t.equal((await patch(ADMIN, adminPath, { admin: false })).status, 403)
  t.equal((await patch(ADMIN, adminPath, { admin: true, enabled: true })).status, 200, 'no-op is fine')
  // Non-admin on self.
  t.equal((await patch(['bob', 'bob-pass'], bobPath, { enabled: 'false' })).status, 403)
  t.equal((await patch(['bob', 'bob-pass'], bobPath, { admin: 'true' })).status, 403)
  t.equal((await patch(['bob', 'bob-pass'], bobPath, { password: 'new-pass' })).status, 200)
  t.equal((await s.as(['bob', 'bob-pass'], 'GET', '/api/rest/users/current')).status, 401, 'old password refused after change')
  t.equal((await s.as(['bob', 'new-pass'], 'GET', '/api/rest/users/current')).status, 200)
  const renamed = await patch(['bob', 'new-pass'], bobPath, { name: 'robert' })
  t.equal(renamed.status, 200)
  t.equal(renamed.json().user.name, 'robert')
  // Non-admin on another user: 403, even for an unknown id and a bad body.
  t.equal((await patch(['robert', 'new-pass'], carolPath, { name: 'x' })).status, 403)
  t.equal((await s.as(['robert', 'new-pass'], 'PATCH', '/api/rest/users/999', { headers: { 'Content-Type': 'text/plain' }, body: 'x' })).status, 403)
  // Validation and conflicts.
  t.equal((await patch(ADMIN, '/api/rest/users/999', { name: 'x' })).status, 404)
  t.equal((await patch(ADMIN, carolPath, { name: ' ' })).status, 400, 'blank name [D15]')
  t.equal((await patch(ADMIN, carolPath, { password: '' })).status, 400, 'empty password [D15]')
  t.equal((await patch(ADMIN, carolPath, { admin: 'maybe' })).status, 400)
  t.equal((await patch(ADMIN, carolPath, { id: '1', name: 'x' })).status, 400, 'body id differs from path [D13]')
  t.equal((await patch(ADMIN, carolPath, { name: 'eve' })).status, 409)
  // Renaming keeps roles [D14].
  t.equal((await patch(ADMIN, eve, { name: 'evelyn' })).status, 200)
  const eveNow = await s.as(['evelyn', 'eve-pass'], 'GET', '/api/rest/users/current')
  t.equal(eveNow.status, 200)
  t.equal(eveNow.json().user.admin, true)
})

t.test('user DELETE rules (spec §4.3)', async (t) => {
  const s = await startTestServer(t)
  const r = await s.admin('POST', '/api/rest/users', jsonBody({ user: { name: 'bob', password: 'bob-pass', enabled: true, admin: false } }))
  const bobPath = new URL(r.json().user.uri).pathname
  const adminPath = new URL((await s.admin('GET', '/api/rest/users/current')).json().user.uri).pathname
  t.equal((await s.as(BOB, 'DELETE', bobPath)).status, 403, 'non-admins delete nobody, not even themselves')
  t.equal((await s.as(BOB, 'DELETE', adminPath)).status, 403)
  t.equal((await s.admin('DELETE', adminPath)).status, 409, 'self-deletion')
  t.equal((await s.admin('DELETE', '/api/rest/users/4242')).status, 404)
  const del = await s.admin('DELETE', bobPath, { headers: { Accept: 'text/plain' } })
  t.equal(del.status, 204, 'DELETE ignores Accept')
  t.equal(del.text, '')
  t.equal((await s.as(BOB, 'GET', '/api/rest/users/current')).status, 401, 'deleted user loses access [D16]')
  t.equal((await s.admin('GET', bobPath)).status, 404)
  // Ids are never reused.
  const again = await s.admin('POST', '/api/rest/users', jsonBody({ user: { name: 'bob', password: 'p', enabled: true, admin: false } }))
  t.not(new URL(again.json().user.uri).pathname, bobPath)
})

t.test('XML vendor types for users', async (t) => {
  const s = await startTestServer(t)
  const r = await s.admin('POST', '/api/rest/users', { headers: { 'Content-Type': vx('user'), Accept: vx('user') }, body: '<?xml version="1.0"?>\n<user>\n  <name>xavier</name>\n  <password>pw</password>\n  <admin>false</admin>\n  <enabled>true</enabled>\n</user>' })
  t.equal(r.status, 201)
  t.equal(r.headers['content-type'], vx('user'))
  const list = await s.admin('GET', '/api/rest/users', { headers: { Accept: vx('users') } })
  t.match(list.text, /^<\?xml[^>]*\?><users><user><admin>true<\/admin>/)
  const bad = await s.admin('POST', '/api/rest/users', { headers: { 'Content-Type': vx('user') }, body: '<!DOCTYPE user [<!ENTITY a "b">]><user><name>&a;</name></user>' })
  t.equal(bad.status, 400, 'DOCTYPE refused [D45]')
  const wrongType = await s.admin('POST', '/api/rest/users', { headers: { 'Content-Type': vj('task') }, body: '{}' })
  t.equal(wrongType.status, 415, 'another entity\'s vendor type')
})
