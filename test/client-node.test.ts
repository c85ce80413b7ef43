/**
 * Request-shape tests for the Node client against a small stub server:
 * methods, URLs, headers, bodies, encoding and error mapping. Behaviour
 * against the real `cloudsync()` server is covered by the end-to-end suite.
 */
import t from 'tap'
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { CloudSyncError, CloudSyncNodeClient, createClient } from '../src/client/node.js'

interface Seen { method: string; url: string; headers: IncomingMessage['headers']; body: string }
const seen: Seen[] = []

const VENDOR = 'application/vnd.fcrepo-cloudsync.'
const ROOTS: Record<string, string> = {
  serviceinfo: 'service', user: 'user', users: 'users', task: 'task', tasks: 'tasks',
  objectset: 'objectSet', objectsets: 'objectSets', objectstore: 'objectStore', objectstores: 'objectStores',
  tasklog: 'taskLog', tasklogs: 'taskLogs', provideraccounts: 'providerAccounts', spaces: 'spaces'
}

let server: Server
let base = ''
const held: ServerResponse[] = []

function serviceInfo(prefix: string): Record<string, unknown> {
  const api = `${base}${prefix}/api/rest`
  return {
    buildDate: '2024-05-01 10:00:00 UTC+0000', currentUserUri: `${api}/users/current`, initialized: true,
    objectSetsUri: `${api}/objectSets`, objectStoresUri: `${api}/objectStores`,
    providerAccountsUri: `${api}/duracloud/providerAccounts`, spacesUri: `${api}/duracloud/spaces`,
    taskLogsUri: `${api}/taskLogs`, tasksUri: `${api}/tasks`, usersUri: `${api}/users`, version: '1.1.1'
  }
}

function send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string | string[]> = {}): void {
  res.writeHead(status, { 'Content-Type': type, ...headers })
  res.end(body)
}

function problem(res: ServerResponse, status: number, title: string, detail: string, path: string): void {
  send(res, status, 'application/problem+json', JSON.stringify({ type: 'about:blank', title, status, detail, instance: path }))
}

function handle(req: IncomingMessage, res: ServerResponse, body: string): void {
  const url = new URL(req.url ?? '/', base)
  const path = url.pathname
  const method = req.method ?? 'GET'
  if (path === '/cs/login' && method === 'POST') {
    const form = new URLSearchParams(body)
    if (form.get('username') === 'throttled') return send(res, 429, 'text/html', '<p>wait</p>', { 'Retry-After': '60' })
    if (form.get('username') === 'alice' && form.get('password') === 's3 cr&t=') {
      return send(res, 303, 'text/plain', '', { Location: '/cs/', 'Set-Cookie': ['cs.sid=abc123; Path=/cs; HttpOnly; SameSite=Lax', 'other=1; Path=/'] })
    }
    return send(res, 401, 'text/html', '<form>Login failed</form>')
  }
  if (path === '/cs/logout' && method === 'POST') {
    return send(res, 303, 'text/plain', '', { Location: '/cs/login', 'Set-Cookie': 'cs.sid=; Path=/cs; Max-Age=0' })
  }
  if (path === '/cs/api/rest/service' || path === '/old/api/rest/service') {
    return send(res, 200, `${VENDOR}serviceinfo+json`, JSON.stringify({ service: serviceInfo(path.slice(0, path.indexOf('/api/'))) }))
  }
  if (path === '/cs/api/rest/html') return send(res, 200, 'text/html', '<html>Please log in</html>')
  if (path === '/cs/api/rest/slow') {
    held.push(res)
    return
  }
  if (path === '/cs/api/rest/tasks/rotate') {
    return send(res, 200, `${VENDOR}task+json`, JSON.stringify({ task: { uri: url.href } }), {
      'Set-Cookie': ['other=gone; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT', 'cs.sid=rotated; Path=/cs; HttpOnly', 'x=1; Max-Age=0']
    })
  }
  if (path === '/cs/api/rest/tasks/409') return problem(res, 409, 'Conflict', 'The task is active; cancel it first.', path)
  if (path === '/cs/api/rest/users/current' && req.headers.authorization === undefined && req.headers.cookie === undefined) {
    return problem(res, 401, 'Unauthorized', 'Log in first.', path)
  }
  if (path.endsWith('/content')) return send(res, 200, 'text/plain; charset=UTF-8', `# log ${path}\n`)
  if (path.startsWith('/old/api/rest/duracloud/') && method === 'POST') {
    return problem(res, 405, 'Method Not Allowed', 'Use GET.', path)
  }
  if (method === 'DELETE') {
    res.writeHead(204)
    res.end()
    return
  }
  // Generic: answer the vendor type that was asked for, echoing the request.
  const accept = req.headers.accept ?? ''
  const name = accept.startsWith(VENDOR) ? accept.slice(VENDOR.length, accept.indexOf('+json')) : ''
  const root = ROOTS[name]
  if (root === undefined) return problem(res, 406, 'Not Acceptable', 'Ask for a vendor type.', path)
  const echo = { uri: url.href, method, body: body === '' ? undefined : body }
  const plural = root.endsWith('s') && root !== 'service'
  const status = method === 'POST' && !path.includes('/duracloud/') ? 201 : 200
  send(res, status, accept, JSON.stringify({ [root]: plural ? [echo] : echo }))
}

t.before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body })
      handle(req, res, body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
t.teardown(async () => {
  for (const res of held) res.destroy()
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

const basicAlice = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`

function client(extra: Partial<ConstructorParameters<typeof CloudSyncNodeClient>[0]> = {}): CloudSyncNodeClient {
  return new CloudSyncNodeClient({ serviceUri: `${base}/cs/api/rest/service`, auth: { username: 'alice', password: 's3cret' }, ...extra })
}

async function failure(p: Promise<unknown>): Promise<CloudSyncError> {
  try {
    await p
  } catch (err) {
    if (err instanceof CloudSyncError) return err
    throw err
  }
  throw new Error('expected a CloudSyncError')
}

t.test('getServiceInfo: GET with the vendor Accept, Basic and X-Requested-With', async (t) => {
  const c = client()
  const mark = seen.length
  const info = await c.getServiceInfo()
  t.equal(info.version, '1.1.1')
  t.equal(c.info, info, 'info is kept')
  const [req] = seen.slice(mark)
  t.equal(req!.method, 'GET')
  t.equal(req!.url, '/cs/api/rest/service')
  t.equal(req!.headers.accept, `${VENDOR}serviceinfo+json`)
  t.equal(req!.headers['x-requested-with'], 'XMLHttpRequest')
  t.equal(req!.headers.authorization, basicAlice)
  t.equal(req!.headers['content-type'], undefined)
})

t.test('service info is fetched once, lazily, for concurrent first calls', async (t) => {
  const c = client()
  const mark = seen.length
  const [tasks, users, sets] = await Promise.all([c.listTasks(), c.listUsers(), c.listObjectSets()])
  t.equal(tasks.length, 1)
  t.equal(users.length, 1)
  t.equal(sets.length, 1)
  const urls = seen.slice(mark).map((s) => s.url)
  t.equal(urls.filter((u) => u === '/cs/api/rest/service').length, 1)
  t.same(urls.filter((u) => u !== '/cs/api/rest/service').sort(), ['/cs/api/rest/objectSets', '/cs/api/rest/tasks', '/cs/api/rest/users'])
})

t.test('every method sends the method, URL, Accept and Content-Type of spec §7.2', async (t) => {
  const c = client()
  await c.getServiceInfo()
  const api = `${base}/cs/api/rest`
  type Row = [string, () => Promise<unknown>, string, string, string, string | undefined, unknown]
  const rows: Row[] = [
    ['initialize', () => c.initialize({ initialAdminUsername: 'admin', initialAdminPassword: 'pw' }), 'POST', '/cs/api/rest/service', 'serviceinfo', 'serviceinit',
      { serviceInit: { initialAdminUsername: 'admin', initialAdminPassword: 'pw' } }],
    ['createUser', () => c.createUser({ name: 'bob', password: 'pw', admin: false, enabled: true }), 'POST', '/cs/api/rest/users', 'user', 'user',
      { user: { name: 'bob', password: 'pw', admin: false, enabled: true } }],
    ['listUsers', () => c.listUsers(), 'GET', '/cs/api/rest/users', 'users', undefined, undefined],
    ['getUser', () => c.getUser(`${api}/users/2`), 'GET', '/cs/api/rest/users/2', 'user', undefined, undefined],
    ['getCurrentUser', () => c.getCurrentUser(), 'GET', '/cs/api/rest/users/current', 'user', undefined, undefined],
    ['updateUser', () => c.updateUser({ uri: `${api}/users/2` }, { admin: 'true', password: undefined }), 'PATCH', '/cs/api/rest/users/2', 'user', 'user',
      { user: { admin: 'true' } }],
    ['deleteUser', () => c.deleteUser(`${api}/users/2`), 'DELETE', '/cs/api/rest/users/2', '*/*', undefined, undefined],
    ['createTask', () => c.createTask({ name: 'L', type: 'list', state: 'Starting', data: { setUri: 's', storeUri: 'o' } }), 'POST', '/cs/api/rest/tasks', 'task', 'task',
      { task: { name: 'L', type: 'list', state: 'Starting', data: '{"setUri":"s","storeUri":"o"}' } }],
    ['listTasks', () => c.listTasks(), 'GET', '/cs/api/rest/tasks', 'tasks', undefined, undefined],
    ['getTask', () => c.getTask(new URL(`${api}/tasks/3.json`)), 'GET', '/cs/api/rest/tasks/3.json', 'task', undefined, undefined],
    ['updateTask', () => c.updateTask(`${api}/tasks/3`, { state: 'Pausing' }), 'PATCH', '/cs/api/rest/tasks/3', 'task', 'task', { task: { state: 'Pausing' } }],
    ['deleteTask', () => c.deleteTask(`${api}/tasks/3`), 'DELETE', '/cs/api/rest/tasks/3', '*/*', undefined, undefined],
    ['createObjectSet', () => c.createObjectSet({ name: 'D', type: 'pidPattern', data: 'demo:*' }), 'POST', '/cs/api/rest/objectSets', 'objectset', 'objectset',
      { objectSet: { name: 'D', type: 'pidPattern', data: 'demo:*' } }],
    ['listObjectSets', () => c.listObjectSets(), 'GET', '/cs/api/rest/objectSets', 'objectsets', undefined, undefined],
    ['getObjectSet', () => c.getObjectSet(`${api}/objectSets/1`), 'GET', '/cs/api/rest/objectSets/1', 'objectset', undefined, undefined],
    ['updateObjectSet', () => c.updateObjectSet(`${api}/objectSets/1`, { type: 'query', data: { queryType: 'SPARQL', queryText: 'q' } }), 'PATCH', '/cs/api/rest/objectSets/1', 'objectset', 'objectset',
      { objectSet: { type: 'query', data: '{"queryType":"SPARQL","queryText":"q"}' } }],
    ['deleteObjectSet', () => c.deleteObjectSet(`${api}/objectSets/1`), 'DELETE', '/cs/api/rest/objectSets/1', '*/*', undefined, undefined],
    ['createObjectStore', () => c.createObjectStore({ name: 'B', type: 'filesystem', data: '{"path":"/srv/b"}' }), 'POST', '/cs/api/rest/objectStores', 'objectstore', 'objectstore',
      { objectStore: { name: 'B', type: 'filesystem', data: '{"path":"/srv/b"}' } }],
    ['listObjectStores', () => c.listObjectStores(), 'GET', '/cs/api/rest/objectStores', 'objectstores', undefined, undefined],
    ['getObjectStore', () => c.getObjectStore(`${api}/objectStores/2`), 'GET', '/cs/api/rest/objectStores/2', 'objectstore', undefined, undefined],
    ['deleteObjectStore', () => c.deleteObjectStore(`${api}/objectStores/2`), 'DELETE', '/cs/api/rest/objectStores/2', '*/*', undefined, undefined],
    ['listTaskLogs', () => c.listTaskLogs(), 'GET', '/cs/api/rest/taskLogs', 'tasklogs', undefined, undefined],
    ['getTaskLog', () => c.getTaskLog(`${api}/taskLogs/7`), 'GET', '/cs/api/rest/taskLogs/7', 'tasklog', undefined, undefined],
    ['getTaskLogContent', () => c.getTaskLogContent({ contentUri: `${api}/taskLogs/7/content` }), 'GET', '/cs/api/rest/taskLogs/7/content', 'text/plain', undefined, undefined],
    ['deleteTaskLog', () => c.deleteTaskLog(`${api}/taskLogs/7`), 'DELETE', '/cs/api/rest/taskLogs/7', '*/*', undefined, undefined]
  ]
  for (const [name, call, method, path, accept, contentType, body] of rows) {
    const mark = seen.length
    const result = await call()
    const reqs = seen.slice(mark)
    t.equal(reqs.length, 1, `${name}: one request`)
    const req = reqs[0]!
    t.equal(req.method, method, `${name}: method`)
    t.equal(req.url, path, `${name}: URL`)
    const expectedAccept = accept.includes('/') ? accept : `${VENDOR}${accept}+json`
    t.equal(req.headers.accept, expectedAccept, `${name}: Accept`)
    t.equal(req.headers['content-type'], contentType === undefined ? undefined : `${VENDOR}${contentType}+json`, `${name}: Content-Type`)
    t.same(req.body === '' ? undefined : JSON.parse(req.body), body, `${name}: body`)
    t.equal(req.headers['x-requested-with'], 'XMLHttpRequest', `${name}: X-Requested-With`)
    t.equal(req.headers.authorization, basicAlice, `${name}: credentials`)
    if (method === 'DELETE') t.equal(result, undefined, `${name}: resolves with nothing`)
  }
})

t.test('results are the unwrapped entities and plain arrays', async (t) => {
  const c = client()
  const task = await c.getTask(`${base}/cs/api/rest/tasks/5`)
  t.equal(task.uri, `${base}/cs/api/rest/tasks/5`)
  const logs = await c.listTaskLogs()
  t.ok(Array.isArray(logs))
  t.equal(await c.getTaskLogContent(`${base}/cs/api/rest/taskLogs/9.json`), '# log /cs/api/rest/taskLogs/9.json/content\n', 'a log URI gets /content appended')
  t.equal(await c.getTaskLogContent(`${base}/cs/api/rest/taskLogs/9/content`), '# log /cs/api/rest/taskLogs/9/content\n')
})

t.test('DuraCloud look-ups use the form POST with encoded values', async (t) => {
  const c = client()
  await c.getServiceInfo()
  const mark = seen.length
  const accounts = await c.listProviderAccounts('https://h/durastore?x=1&y', 'al ice', 'p&w=d+é')
  t.equal(accounts.length, 1)
  const spaces = await c.listSpaces('https://h/durastore', 'alice', 'pw', '0 1')
  t.equal(spaces.length, 1)
  const [a, s] = seen.slice(mark)
  t.equal(a!.method, 'POST')
  t.equal(a!.url, '/cs/api/rest/duracloud/providerAccounts', 'no credentials in the URL')
  t.equal(a!.headers['content-type'], 'application/x-www-form-urlencoded')
  t.equal(a!.headers.accept, `${VENDOR}provideraccounts+json`)
  t.same(Object.fromEntries(new URLSearchParams(a!.body)), { url: 'https://h/durastore?x=1&y', username: 'al ice', password: 'p&w=d+é' })
  t.equal(s!.url, '/cs/api/rest/duracloud/spaces')
  t.equal(s!.headers.accept, `${VENDOR}spaces+json`)
  t.same(Object.fromEntries(new URLSearchParams(s!.body)), { url: 'https://h/durastore', username: 'alice', password: 'pw', providerAccountId: '0 1' })
})

t.test('look-ups fall back to the encoded GET form on 405', async (t) => {
  const c = new CloudSyncNodeClient({ serviceUri: `${base}/old/api/rest/service`, auth: { username: 'alice', password: 's3cret' } })
  const mark = seen.length
  const spaces = await c.listSpaces('https://h/d', 'a&b', 'p w', '#1')
  t.equal(spaces.length, 1)
  const reqs = seen.slice(mark).filter((r) => r.url.includes('duracloud'))
  t.same(reqs.map((r) => r.method), ['POST', 'GET'])
  const q = new URL(reqs[1]!.url, base)
  t.equal(q.pathname, '/old/api/rest/duracloud/spaces')
  t.same(Object.fromEntries(q.searchParams), { url: 'https://h/d', username: 'a&b', password: 'p w', providerAccountId: '#1' })
  t.notMatch(reqs[1]!.url, /[ #&]b|p w/, 'values are encoded in the query')
})

t.test('errors carry status and the problem document', async (t) => {
  const c = client()
  const err = await failure(c.deleteTask(`${base}/cs/api/rest/tasks/409`))
  t.equal(err.status, 409)
  t.equal(err.kind, 'http')
  t.equal(err.method, 'DELETE')
  t.equal(err.problem?.detail, 'The task is active; cancel it first.')
  t.match(err.message, /409.*cancel it first/)

  const anon = new CloudSyncNodeClient({ serviceUri: `${base}/cs/api/rest/service` })
  const unauth = await failure(anon.getCurrentUser())
  t.equal(unauth.status, 401)
  t.equal(unauth.problem?.title, 'Unauthorized')

  const html = await failure(c.getUser(`${base}/cs/api/rest/html`))
  t.equal(html.kind, 'unexpected_response')
  t.equal(html.status, 200)
  t.match(html.body, /Please log in/)
})

t.test('network failures and timeouts reject with status 0', async (t) => {
  const closed = createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const port = (closed.address() as AddressInfo).port
  await new Promise<void>((resolve) => closed.close(() => resolve()))
  const dead = new CloudSyncNodeClient({ serviceUri: `http://127.0.0.1:${port}/api/rest/service` })
  const down = await failure(dead.getServiceInfo())
  t.equal(down.status, 0)
  t.equal(down.kind, 'network')

  const slow = client({ timeoutMs: 200 })
  const started = Date.now()
  const late = await failure(slow.getTask(`${base}/cs/api/rest/slow`))
  t.equal(late.kind, 'timeout')
  t.equal(late.status, 0)
  t.ok(Date.now() - started < 3000)
})

t.test('entity URIs on another origin are refused before any request', async (t) => {
  const c = client()
  const mark = seen.length
  await t.rejects(c.getTask('http://evil.example/api/rest/tasks/1'), TypeError)
  await t.rejects(c.deleteUser({ uri: 'https://127.0.0.1/cs/api/rest/users/1' }), TypeError, 'scheme counts')
  t.equal(seen.length, mark)
  const relative = await c.getTask('tasks/4')
  t.equal(relative.uri, `${base}/cs/api/rest/tasks/4`, 'relative references resolve against the service URI')
})

t.test('login keeps the session cookie; logout drops it', async (t) => {
  const c = client()
  let mark = seen.length
  await c.login('alice', 's3 cr&t=')
  const [login] = seen.slice(mark)
  t.equal(login!.method, 'POST')
  t.equal(login!.url, '/cs/login', 'login URL derived from the service URI')
  t.equal(login!.headers['content-type'], 'application/x-www-form-urlencoded')
  t.same(Object.fromEntries(new URLSearchParams(login!.body)), { username: 'alice', password: 's3 cr&t=' })
  t.equal(login!.headers.authorization, undefined)
  t.equal(login!.headers.origin, undefined, 'a script login carries no cross-site Origin')
  t.equal(c.cookie, 'cs.sid=abc123; other=1')

  mark = seen.length
  await c.updateTask(`${base}/cs/api/rest/tasks/3`, { state: 'Canceling' })
  const [patch] = seen.slice(mark)
  t.equal(patch!.headers.cookie, 'cs.sid=abc123; other=1')
  t.equal(patch!.headers.authorization, undefined, 'Basic credentials dropped after login')
  t.equal(patch!.headers['x-requested-with'], 'XMLHttpRequest', 'cookie writes carry the CSRF proof')

  await c.getTask(`${base}/cs/api/rest/tasks/rotate`)
  t.equal(c.cookie, 'cs.sid=rotated', 'rotated and expired cookies are followed')

  mark = seen.length
  await c.logout()
  t.equal(seen.slice(mark)[0]!.url, '/cs/logout')
  t.equal(seen.slice(mark)[0]!.headers.cookie, 'cs.sid=rotated')
  t.equal(c.cookie, undefined, 'the session is forgotten')
})

t.test('login failures', async (t) => {
  const c = client()
  const wrong = await failure(c.login('alice', 'nope'))
  t.equal(wrong.status, 401)
  t.match(wrong.message, /Login failed/)
  const throttled = await failure(c.login('throttled', 'x'))
  t.equal(throttled.status, 429)
  t.equal(throttled.retryAfter, 60)
  t.equal(c.cookie, undefined)
})

t.test('cookie auth sends the given session', async (t) => {
  const c = createClient({ serviceUri: `${base}/cs/api/rest/service`, auth: { cookie: 'cs.sid=xyz; theme=dark' } })
  const mark = seen.length
  await c.getCurrentUser()
  const reqs = seen.slice(mark)
  t.ok(reqs.length >= 1)
  for (const r of reqs) {
    t.equal(r.headers.cookie, 'cs.sid=xyz; theme=dark')
    t.equal(r.headers.authorization, undefined)
  }
})

t.test('options are checked when the client is created', async (t) => {
  t.throws(() => new CloudSyncNodeClient({ serviceUri: 'api/rest/service' }), /serviceUri/)
  t.throws(() => new CloudSyncNodeClient({ serviceUri: 'ftp://h/api/rest/service' }), /serviceUri/)
  t.throws(() => new CloudSyncNodeClient({ serviceUri: 'http://h/api/rest/service', timeoutMs: -1 }), /timeoutMs/)
  t.throws(() => new CloudSyncNodeClient({ serviceUri: 'http://h/api/rest/service', auth: { cookie: ' ' } }), /auth\.cookie/)
  t.throws(() => new CloudSyncNodeClient({ serviceUri: 'http://h/api/rest/service', auth: { username: 'a:b', password: 'x' } }), /auth\.username/)
  t.throws(() => new CloudSyncNodeClient({ serviceUri: 'http://h/api/rest/service', loginUri: 'http://other/login' }), /loginUri/)
  t.throws(() => new CloudSyncNodeClient({ serviceUri: 'http://h/api/rest/service', fetch: 1 as unknown as typeof fetch }), /fetch/)
})
