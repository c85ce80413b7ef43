import t from 'tap'
import { startTestServer, ADMIN, jsonBody } from './helpers/server.js'
import { vj, vx } from './helpers/media.js'
import { sessionCookie } from './reliability/helpers.js'

const LINKS = ['currentUserUri', 'objectSetsUri', 'objectStoresUri', 'providerAccountsUri', 'spacesUri', 'taskLogsUri', 'tasksUri', 'usersUri']

t.test('service info and initialization (spec §3.3, §4.2)', async (t) => {
  const s = await startTestServer(t, { initialize: false })
  let r = await s.req('GET', '/api/rest/service')
  t.equal(r.status, 200)
  t.equal(r.headers['content-type'], 'application/json')
  const info = r.json().service
  t.equal(info.initialized, false)
  t.equal(info.version, '1.1.1')
  t.same(Object.keys(info), ['buildDate', ...LINKS.slice(0, 1), 'initialized', ...LINKS.slice(1), 'version'], 'alphabetical')
  t.equal(info.usersUri, `${s.api}/users`)
  t.equal(info.providerAccountsUri, `${s.api}/duracloud/providerAccounts`)
  t.match(r.headers.etag, /^"/)
  t.equal(r.headers['cache-control'], 'private, no-cache')

  // Protected resources need authentication; the service does not.
  t.equal((await s.req('GET', '/api/rest/users')).status, 401)

  // Init: parse → 409 → validation.
  r = await s.req('POST', '/api/rest/service', { headers: { 'Content-Type': vj('serviceinit') }, body: '{"serviceInit":' })
  t.equal(r.status, 400)
  r = await s.req('POST', '/api/rest/service', jsonBody({ serviceInit: { initialAdminUsername: ' ', initialAdminPassword: 'pw' } }, vj('serviceinit')))
  t.equal(r.status, 400, 'blank name [D35]')
  r = await s.req('POST', '/api/rest/service', jsonBody({ serviceInit: { initialAdminUsername: 'admin' } }, vj('serviceinit')))
  t.equal(r.status, 400, 'missing password [D35]')
  r = await s.req('POST', '/api/rest/service.xml', {
    headers: { 'Content-Type': vx('serviceinit'), Authorization: 'Basic bm9ib2R5Om5vdGhpbmc=' },
    body: '<serviceInit><initialAdminPassword>s3cret</initialAdminPassword><initialAdminUsername>admin</initialAdminUsername></serviceInit>'
  })
  t.equal(r.status, 200, 'credentials on the open resource are ignored')
  t.equal(r.headers['content-type'], 'application/xml')
  t.match(r.text, /<initialized>true<\/initialized>/)
  t.match(r.text, new RegExp(`<usersUri>${s.api}/users\\.xml</usersUri>`), 'links carry the suffix [D34]')
  r = await s.req('POST', '/api/rest/service', jsonBody({ serviceInit: { initialAdminUsername: 'other', initialAdminPassword: 'pw' } }))
  t.equal(r.status, 409)
  r = await s.req('POST', '/api/rest/service', jsonBody({ serviceInit: {} }))
  t.equal(r.status, 409, 'already initialized comes before validation')
  t.equal((await s.as(['admin', 's3cret'], 'GET', '/api/rest/users/current')).status, 200)
  t.equal((await s.req('DELETE', '/api/rest/service')).status, 405)
  r = await s.req('OPTIONS', '/api/rest/service')
  t.equal(r.status, 200)
  t.match(r.headers.allow, /GET.*POST/)
})

t.test('negotiation, suffixes and links (spec §2.3, §2.4)', async (t) => {
  const s = await startTestServer(t)
  const get = (path: string, accept?: string) => s.admin('GET', path, accept === undefined ? {} : { headers: { Accept: accept } })
  t.equal((await get('/api/rest/tasks')).headers['content-type'], 'application/json', 'no Accept → JSON')
  t.equal((await get('/api/rest/tasks', '*/*')).headers['content-type'], 'application/json')
  t.equal((await get('/api/rest/tasks', 'application/*')).headers['content-type'], 'application/json')
  t.equal((await get('/api/rest/tasks', 'application/xml, application/json')).headers['content-type'], 'application/xml', 'header order breaks ties')
  t.equal((await get('/api/rest/tasks', 'application/json;q=0.5, application/xml')).headers['content-type'], 'application/xml')
  t.equal((await get('/api/rest/tasks', vx('tasks'))).headers['content-type'], vx('tasks'))
  t.equal((await get('/api/rest/tasks', 'application/json; charset=utf-8')).status, 200, 'parameters ignored for matching')
  t.equal((await get('/api/rest/tasks', vj('task'))).status, 406)
  t.equal((await get('/api/rest/tasks', 'text/html')).status, 406)
  const suffixed = await get('/api/rest/tasks.xml', 'application/json')
  t.equal(suffixed.headers['content-type'], 'application/xml', 'suffix overrides Accept')
  t.equal(suffixed.headers['x-content-type-options'], 'nosniff')
  t.equal(suffixed.text, '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><tasks/>')
  const json = await get('/api/rest/service.json')
  t.equal(json.json().service.tasksUri, `${s.api}/tasks.json`)
  t.equal(json.json().service.currentUserUri, `${s.api}/users/current.json`)
  t.equal((await get('/api/rest/users.json/')).status, 200, 'trailing slash after suffix')
  t.equal((await get('/api/rest/users/')).status, 200, 'one trailing slash ignored')
  t.equal((await get('/api/rest/users//')).status, 404)
  t.equal((await get('/api/rest/objectSets/.json')).status, 404, 'a bare suffix is not a suffix')
  t.equal((await get('/api/rest/users.xml.json')).status, 404, 'only the final suffix counts')
  t.equal((await get('/api/rest/users%2Ejson')).status, 404, 'encoded dots are no suffix')
  t.equal((await get('/api/rest/Users')).status, 404, 'case-sensitive paths')
  t.equal((await get('/api/rest')).status, 404)
  t.equal((await get('/api/rest/')).status, 404)
  // The default set exists.
  const sets = (await get('/api/rest/objectSets.json')).json().objectSets
  t.same(sets, [{ data: '*', name: 'All Objects', type: 'pidPattern', uri: `${s.api}/objectSets/1.json` }])
  // Conditional GET.
  const first = await get('/api/rest/objectSets')
  const again = await s.admin('GET', '/api/rest/objectSets', { headers: { 'If-None-Match': first.headers.etag! } })
  t.equal(again.status, 304)
  t.equal(again.text, '')
  t.equal(first.headers.vary?.includes('Accept'), true)
  // HEAD mirrors GET without a body.
  const head = await s.admin('HEAD', '/api/rest/objectSets')
  t.equal(head.status, 200)
  t.equal(head.text, '')
  t.equal(head.headers.etag, first.headers.etag)
  // Problem documents follow the request's format.
  const xmlProblem = await get('/api/rest/objectSets/99.xml')
  t.equal(xmlProblem.headers['content-type'], 'application/problem+xml')
  t.match(xmlProblem.text, /<problem xmlns="urn:ietf:rfc:7807">.*<status>404<\/status>.*<instance>\/api\/rest\/objectSets\/99\.xml<\/instance>/)
  const textProblem = await get('/api/rest/objectSets/99', 'text/html')
  t.equal(textProblem.status, 406, '406 comes before the operation\'s 404')
  t.match(textProblem.headers['content-type'], /^text\/plain/)
  t.equal(textProblem.headers['cache-control'], 'no-store')
})

t.test('method override (spec §1.4)', async (t) => {
  const s = await startTestServer(t)
  const created = await s.admin('POST', '/api/rest/objectSets', jsonBody({ objectSet: { name: 'Demo', type: 'pidPattern', data: 'demo:*' } }))
  const path = new URL(created.json().objectSet.uri).pathname
  let r = await s.admin('POST', `${path}?_method=PATCH`, jsonBody({ objectSet: { name: 'Demo 2' } }))
  t.equal(r.status, 200)
  t.equal(r.json().objectSet.name, 'Demo 2')
  r = await s.admin('POST', path, { ...jsonBody({ objectSet: { name: 'Demo 3' } }), headers: { 'Content-Type': 'application/json', 'X-HTTP-Method-Override': ' patch ' } })
  t.equal(r.status, 200, 'header, trimmed and case-insensitive')
  t.equal(r.json().objectSet.name, 'Demo 3')
  r = await s.admin('POST', `${path}?_method=DELETE`, { headers: { 'X-HTTP-Method-Override': 'PATCH', 'Content-Type': 'application/json' }, body: JSON.stringify({ objectSet: { name: 'Header wins' } }) })
  t.equal(r.status, 200, 'header wins over query')
  for (const value of ['GET', 'POST', 'DELETE, PATCH', 'PUT']) {
    r = await s.admin('POST', `${path}?_method=${encodeURIComponent(value)}`)
    t.equal(r.status, 405, `override to ${value}`)
  }
  r = await s.admin('GET', `${path}?_method=DELETE`)
  t.equal(r.status, 200, 'ignored on GET')
  r = await s.admin('POST', '/api/rest/nothing?_method=BOGUS')
  t.equal(r.status, 404, '404 before 405')
  r = await s.admin('POST', `${path}?_method=DELETE&_method=PATCH`)
  t.equal(r.status, 204, 'first _method counts')
  t.equal((await s.admin('GET', path)).status, 404)
})

t.test('a cross-site cookie request gets 404 and 405 before the CSRF 403 (spec §1.4, §6.6)', async (t) => {
  const s = await startTestServer(t)
  const cookie = sessionCookie(await s.req('POST', '/login', {
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: ADMIN[0], password: ADMIN[1] }).toString()
  }))
  const crossSite = { Cookie: cookie, Origin: 'https://evil.example', Accept: 'application/json', 'Content-Type': 'application/json' }
  const body = JSON.stringify({ objectSet: { name: 'Forged' } })
  const cases: Array<[string, string, number, string]> = [
    ['POST', '/api/rest/nothing', 404, 'unknown path'],
    ['PUT', '/api/rest/objectSets/1', 405, 'a method the route does not have'],
    ['DELETE', '/api/rest/objectSets', 405, 'DELETE of a collection'],
    ['POST', '/api/rest/objectSets/1?_method=PUT', 405, 'a refused override'],
    ['POST', '/api/rest/objectSets/1?_method=PATCH', 403, 'an allowed state change: refused as cross-site'],
    ['POST', '/api/rest/objectSets', 403, 'a create: refused as cross-site'],
  ]
  for (const [method, path, status, what] of cases) {
    const r = await s.req(method, path, { headers: crossSite, body })
    t.equal(r.status, status, `${method} ${path}: ${what}`)
    const allowed = path.includes('/1') ? ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH'] : ['GET', 'HEAD', 'OPTIONS', 'POST']
    if (status === 405) t.same(String(r.headers.allow).split(', ').sort(), allowed, 'with the route\'s methods in Allow')
    if (status === 403) t.match(r.json(), { status: 403, detail: /Cross-site request refused/ })
  }
  const sets = await s.admin('GET', '/api/rest/objectSets.json')
  t.notOk(sets.text.includes('Forged'), 'nothing was created or renamed')
})

t.test('authentication answers (spec §6.4)', async (t) => {
  const s = await startTestServer(t)
  let r = await s.req('GET', '/api/rest/users')
  t.equal(r.status, 401)
  t.equal(r.headers['www-authenticate'], 'Basic realm="CloudSync", charset="UTF-8"')
  r = await s.req('GET', '/api/rest/users', { headers: { 'X-Requested-With': 'XMLHttpRequest' } })
  t.equal(r.status, 401)
  t.equal(r.headers['www-authenticate'], undefined, 'no browser dialog for AJAX')
  r = await s.req('GET', '/api/rest/users.json', { headers: { Accept: 'text/html,application/xhtml+xml', 'Sec-Fetch-Mode': 'navigate' } })
  t.equal(r.status, 302, 'browser navigation goes to the login page')
  t.match(r.headers.location, /\/login/)
  r = await s.as(['admin', 'wrong'], 'GET', '/api/rest/users')
  t.equal(r.status, 401)
  t.match(r.headers['www-authenticate'], /^Basic realm="CloudSync"/)
  r = await s.req('GET', '/api/rest/users', { headers: { Authorization: 'Basic !!!' } })
  t.equal(r.status, 401)
  r = await s.req('GET', '/api/rest/nothing/here')
  t.equal(r.status, 401, '401 before 404')
  r = await s.admin('GET', '/api/rest/users', { headers: { Host: 'evil.example"><x' } })
  t.equal(r.status, 400, 'malformed Host is refused, not reflected')
})
