/**
 * The browser client library, run as the classic script a page loads, in a
 * fresh global scope with an XMLHttpRequest that performs real HTTP requests
 * (asynchronous ones with node:http, synchronous ones in a child process, as
 * a browser blocks the page). The stub server runs in a worker thread so a
 * synchronous request cannot block it. It records request shapes only;
 * behaviour against the real server is covered by the end-to-end suite.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import { execFileSync } from 'node:child_process'
import { Worker } from 'node:worker_threads'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import vm from 'node:vm'
import ts from 'typescript'

// ---------------------------------------------------------------------------
// Stub CloudSync server (worker thread).

const SERVER = String.raw`
const http = require('node:http')
const { parentPort } = require('node:worker_threads')
const VENDOR = 'application/vnd.fcrepo-cloudsync.'
const ROOTS = { serviceinfo: 'service', user: 'user', users: 'users', task: 'task', tasks: 'tasks',
  objectset: 'objectSet', objectsets: 'objectSets', objectstore: 'objectStore', objectstores: 'objectStores',
  tasklog: 'taskLog', tasklogs: 'taskLogs', provideraccounts: 'providerAccounts', spaces: 'spaces' }
let seen = []
let base = ''
function info(prefix) {
  const api = base + prefix + '/api/rest'
  return { buildDate: 'b', currentUserUri: api + '/users/current', initialized: true,
    objectSetsUri: api + '/objectSets', objectStoresUri: api + '/objectStores',
    providerAccountsUri: api + '/duracloud/providerAccounts', spacesUri: api + '/duracloud/spaces',
    taskLogsUri: api + '/taskLogs', tasksUri: api + '/tasks', usersUri: api + '/users', version: '1.1.1' }
}
function send(res, status, type, body) { res.writeHead(status, { 'Content-Type': type }); res.end(body) }
function problem(res, status, title, detail) {
  send(res, status, 'application/problem+json', JSON.stringify({ type: 'about:blank', title, status, detail, instance: '/x' }))
}
const server = http.createServer((req, res) => {
  const chunks = []
  req.on('data', (c) => chunks.push(c))
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8')
    const url = new URL(req.url, base)
    const path = url.pathname
    if (path === '/__seen') { const out = seen; seen = []; return send(res, 200, 'application/json', JSON.stringify(out)) }
    seen.push({ method: req.method, url: req.url, headers: req.headers, body })
    if (path === '/cs/api/rest/service' || path === '/old/api/rest/service') {
      return send(res, 200, VENDOR + 'serviceinfo+json', JSON.stringify({ service: info(path.slice(0, path.indexOf('/api/'))) }))
    }
    if (path === '/cs/api/rest/broken/service') return send(res, 200, 'application/json', '{"nothing":1}')
    if (path === '/status/401') return problem(res, 401, 'Unauthorized', 'Log in first.')
    if (path === '/status/503') return problem(res, 503, 'Service Unavailable', 'Starting up.')
    if (path === '/status/409') return problem(res, 409, 'Conflict', 'The task is active; cancel it first.')
    if (path === '/html') return send(res, 200, 'text/html', '<html>Please log in</html>')
    if (path.startsWith('/old/api/rest/duracloud/') && req.method === 'POST') return problem(res, 405, 'Method Not Allowed', 'Use GET.')
    if (req.method === 'DELETE') { res.writeHead(204); return res.end() }
    const accept = req.headers.accept || ''
    const name = accept.startsWith(VENDOR) ? accept.slice(VENDOR.length, accept.indexOf('+json')) : ''
    const root = ROOTS[name]
    if (root === undefined) return problem(res, 406, 'Not Acceptable', 'Ask for a vendor type.')
    const echo = { uri: url.href, method: req.method }
    const plural = root.endsWith('s') && root !== 'service'
    send(res, req.method === 'POST' && !path.includes('/duracloud/') ? 201 : 200, accept, JSON.stringify({ [root]: plural ? [echo] : echo }))
  })
})
server.listen(0, '127.0.0.1', () => {
  base = 'http://127.0.0.1:' + server.address().port
  parentPort.postMessage(base)
})
parentPort.on('message', (m) => { if (m === 'close') { server.closeAllConnections(); server.close(() => process.exit(0)) } })
`

// ---------------------------------------------------------------------------
// A browser-like XMLHttpRequest over real HTTP.

const SYNC_REQUEST = String.raw`
let input = ''
process.stdin.on('data', (c) => { input += c })
process.stdin.on('end', async () => {
  const r = JSON.parse(input)
  try {
    const res = await fetch(r.url, { method: r.method, headers: r.headers, body: r.body === null ? undefined : r.body })
    const headers = {}
    res.headers.forEach((v, k) => { headers[k] = v })
    process.stdout.write(JSON.stringify({ status: res.status, statusText: res.statusText, headers, body: await res.text() }))
  } catch (err) {
    process.stdout.write(JSON.stringify({ error: String(err) }))
  }
})
`

class NodeXMLHttpRequest {
  status = 0
  statusText = ''
  responseText = ''
  onloadend: (() => void) | null = null
  ontimeout: (() => void) | null = null
  onabort: (() => void) | null = null
  private method = 'GET'
  private url = ''
  private async = true
  private headers: Record<string, string> = {}
  private responseHeaders: Record<string, string> = {}

  open(method: string, url: string, async: boolean): void {
    this.method = method
    this.url = url
    this.async = async
  }

  setRequestHeader(name: string, value: string): void {
    this.headers[name] = value
  }

  getResponseHeader(name: string): string | null {
    return this.responseHeaders[name.toLowerCase()] ?? null
  }

  send(body: string | null): void {
    if (!this.async) {
      const out = JSON.parse(execFileSync(process.execPath, ['-e', SYNC_REQUEST], {
        input: JSON.stringify({ method: this.method, url: this.url, headers: this.headers, body })
      }).toString('utf8')) as { error?: string; status: number; statusText: string; headers: Record<string, string>; body: string }
      if (out.error !== undefined) throw new Error(`NetworkError: ${out.error}`)
      this.status = out.status
      this.statusText = out.statusText
      this.responseHeaders = out.headers
      this.responseText = out.body
      return
    }
    const req = request(this.url, { method: this.method, headers: this.headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { text += c })
      res.on('end', () => {
        this.status = res.statusCode ?? 0
        this.statusText = res.statusMessage ?? ''
        for (const [k, v] of Object.entries(res.headers)) this.responseHeaders[k] = Array.isArray(v) ? v.join(', ') : String(v)
        this.responseText = text
        this.onloadend?.()
      })
    })
    req.on('error', () => {
      this.status = 0
      this.onloadend?.()
    })
    req.end(body ?? undefined)
  }
}

// ---------------------------------------------------------------------------

interface Seen { method: string; url: string; headers: Record<string, string | undefined>; body: string }
type AnyFn = (...args: unknown[]) => unknown
type Client = Record<string, AnyFn> & { info: Record<string, string> | undefined; serviceUri: string; promises: Record<string, AnyFn> }
interface Global {
  CloudSyncClient: AnyFn & { new (uri: string, info?: unknown): Client } & Record<string, AnyFn>
  notices: Array<{ message: string; kind: string; failure: Record<string, unknown> }>
  reloads: number
}

const source = readFileSync(new URL('../src/client/browser.ts', import.meta.url), 'utf8')
const script = ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2017, module: ts.ModuleKind.None } }).outputText

let worker: Worker
let base = ''
const VENDOR = 'application/vnd.fcrepo-cloudsync.'

function page(): Global {
  const context = vm.createContext({ XMLHttpRequest: NodeXMLHttpRequest, console })
  vm.runInContext(script, context, { filename: 'cloudsync-api.js' })
  const g = context as unknown as Global
  g.notices = []
  g.reloads = 0
  g.CloudSyncClient.onNotice = (message: unknown, kind: unknown, failure: unknown) => {
    g.notices.push({ message: String(message), kind: String(kind), failure: failure as Record<string, unknown> })
  }
  g.CloudSyncClient.reload = () => { g.reloads++ }
  return g
}

async function takeSeen(): Promise<Seen[]> {
  const res = await fetch(`${base}/__seen`)
  return (await res.json()) as Seen[]
}

/** Call a callback method and wait for success or error. */
function call(client: Client, name: string, ...lead: unknown[]): Promise<{ ok: boolean; args: unknown[] }> {
  return new Promise((resolve) => {
    client[name]!(...lead, (...args: unknown[]) => resolve({ ok: true, args }), true, (...args: unknown[]) => resolve({ ok: false, args }))
  })
}

t.before(async () => {
  worker = new Worker(SERVER, { eval: true })
  base = await new Promise<string>((resolve) => worker.once('message', resolve))
})
t.teardown(async () => {
  worker.postMessage('close')
  await new Promise((resolve) => worker.once('exit', resolve))
})

t.test('the script defines one global constructor and can be loaded twice', async (t) => {
  const context = vm.createContext({ XMLHttpRequest: NodeXMLHttpRequest })
  vm.runInContext(script, context)
  const first = (context as unknown as Global).CloudSyncClient
  t.equal(typeof first, 'function')
  t.doesNotThrow(() => vm.runInContext(script, context), 'both file names on one page do not clash')
  t.notMatch(script, /^\s*(import|export)\s/m, 'no module syntax at runtime')
})

t.test('constructor loads the service info synchronously', async (t) => {
  const g = page()
  await takeSeen()
  const client = new g.CloudSyncClient(`${base}/cs/api/rest/service`)
  t.equal(client.info?.usersUri, `${base}/cs/api/rest/users`, 'info is available right after construction')
  t.equal(client.serviceUri, `${base}/cs/api/rest/service`)
  const [req] = await takeSeen()
  t.equal(req!.method, 'GET')
  t.equal(req!.url, '/cs/api/rest/service')
  t.equal(req!.headers.accept, `${VENDOR}serviceinfo+json`)
  t.equal(req!.headers['x-requested-with'], 'XMLHttpRequest')
  t.same(g.notices, [])
})

t.test('every method sends the method, URL, Accept and Content-Type of spec §7.2', async (t) => {
  const g = page()
  const client = new g.CloudSyncClient(`${base}/cs/api/rest/service`)
  await takeSeen()
  const api = `${base}/cs/api/rest`
  const rows: Array<[string, unknown[], string, string, string, string | undefined]> = [
    ['getServiceInfo', [], 'GET', '/cs/api/rest/service', 'serviceinfo', undefined],
    ['initialize', [{ serviceInit: { initialAdminUsername: 'a', initialAdminPassword: 'p' } }], 'POST', '/cs/api/rest/service', 'serviceinfo', 'serviceinit'],
    ['createUser', [{ user: { name: 'bob', password: 'pw', enabled: true, admin: false } }], 'POST', '/cs/api/rest/users', 'user', 'user'],
    ['listUsers', [], 'GET', '/cs/api/rest/users', 'users', undefined],
    ['getUser', [`${api}/users/2`], 'GET', '/cs/api/rest/users/2', 'user', undefined],
    ['getCurrentUser', [], 'GET', '/cs/api/rest/users/current', 'user', undefined],
    ['updateUser', [`${api}/users/2`, { user: { admin: 'true' } }], 'PATCH', '/cs/api/rest/users/2', 'user', 'user'],
    ['deleteUser', [`${api}/users/2`], 'DELETE', '/cs/api/rest/users/2', '*/*', undefined],
    ['createTask', [{ task: { name: 'L', type: 'list', state: 'Idle', data: '{}' } }], 'POST', '/cs/api/rest/tasks', 'task', 'task'],
    ['listTasks', [], 'GET', '/cs/api/rest/tasks', 'tasks', undefined],
    ['getTask', [`${api}/tasks/3`], 'GET', '/cs/api/rest/tasks/3', 'task', undefined],
    ['updateTask', [`${api}/tasks/3`, { task: { state: 'Pausing' } }], 'PATCH', '/cs/api/rest/tasks/3', 'task', 'task'],
    ['deleteTask', [`${api}/tasks/3`], 'DELETE', '/cs/api/rest/tasks/3', '*/*', undefined],
    ['createObjectSet', [{ objectSet: { name: 'S', type: 'pidPattern', data: '*' } }], 'POST', '/cs/api/rest/objectSets', 'objectset', 'objectset'],
    ['listObjectSets', [], 'GET', '/cs/api/rest/objectSets', 'objectsets', undefined],
    ['getObjectSet', [`${api}/objectSets/1`], 'GET', '/cs/api/rest/objectSets/1', 'objectset', undefined],
    ['updateObjectSet', [`${api}/objectSets/1`, { objectSet: { name: 'T' } }], 'PATCH', '/cs/api/rest/objectSets/1', 'objectset', 'objectset'],
    ['deleteObjectSet', [`${api}/objectSets/1`], 'DELETE', '/cs/api/rest/objectSets/1', '*/*', undefined],
    ['createObjectStore', [{ objectStore: { name: 'B', type: 'filesystem', data: '{"path":"/b"}' } }], 'POST', '/cs/api/rest/objectStores', 'objectstore', 'objectstore'],
    ['listObjectStores', [], 'GET', '/cs/api/rest/objectStores', 'objectstores', undefined],
    ['getObjectStore', [`${api}/objectStores/2`], 'GET', '/cs/api/rest/objectStores/2', 'objectstore', undefined],
    ['deleteObjectStore', [`${api}/objectStores/2`], 'DELETE', '/cs/api/rest/objectStores/2', '*/*', undefined],
    ['listTaskLogs', [], 'GET', '/cs/api/rest/taskLogs', 'tasklogs', undefined],
    ['getTaskLog', [`${api}/taskLogs/7`], 'GET', '/cs/api/rest/taskLogs/7', 'tasklog', undefined],
    ['deleteTaskLog', [`${api}/taskLogs/7`], 'DELETE', '/cs/api/rest/taskLogs/7', '*/*', undefined]
  ]
  for (const [name, lead, method, path, accept, contentType] of rows) {
    const result = await call(client, name, ...lead)
    t.ok(result.ok, `${name}: success callback`)
    const [req, ...more] = await takeSeen()
    t.equal(more.length, 0, `${name}: one request`)
    t.equal(req!.method, method, `${name}: method (PATCH/DELETE sent as such)`)
    t.equal(req!.url, path, `${name}: URL`)
    t.equal(req!.headers.accept, accept.includes('/') ? accept : `${VENDOR}${accept}+json`, `${name}: Accept`)
    t.equal(req!.headers['content-type'], contentType === undefined ? undefined : `${VENDOR}${contentType}+json`, `${name}: Content-Type`)
    t.equal(req!.headers['x-requested-with'], 'XMLHttpRequest', `${name}: X-Requested-With`)
    if (lead.length > 0 && typeof lead[lead.length - 1] === 'object') {
      t.same(JSON.parse(req!.body), lead[lead.length - 1], `${name}: body is JSON.stringify(data)`)
    } else {
      t.equal(req!.body, '', `${name}: no body`)
    }
    if (method === 'DELETE') t.same(result.args.slice(0, 2), [undefined, 'nocontent'], `${name}: success gets no data`)
    else t.equal(result.args[1], 'success')
  }
  const task = await call(client, 'getTask', `${api}/tasks/3`)
  t.same(task.args[0], { task: { uri: `${api}/tasks/3`, method: 'GET' } }, 'success receives the parsed JSON')
  await takeSeen()
})

t.test('async=false performs the request before the method returns', async (t) => {
  const g = page()
  const client = new g.CloudSyncClient(`${base}/cs/api/rest/service`)
  let data: unknown
  client.listTasks!((d: unknown) => { data = d }, false)
  t.same(data, { tasks: [{ uri: `${base}/cs/api/rest/tasks`, method: 'GET' }] })
  await takeSeen()
})

t.test('listTasks takes (success, async, error) like every list (D36)', async (t) => {
  const g = page()
  const client = new g.CloudSyncClient(`${base}/cs/api/rest/service`)
  client.info!.tasksUri = `${base}/status/409`
  const result = await call(client, 'listTasks')
  t.notOk(result.ok)
  const [xhr, method, url, textStatus] = result.args as [{ status: number }, string, string, string]
  t.equal(xhr.status, 409)
  t.equal(method, 'GET')
  t.equal(url, `${base}/status/409`)
  t.equal(textStatus, 'error')
  t.same(g.notices, [], 'a given error callback replaces the default handler')
  await takeSeen()
})

t.test('DuraCloud look-ups post an encoded form; GET fallback is encoded too', async (t) => {
  const g = page()
  const client = new g.CloudSyncClient(`${base}/cs/api/rest/service`)
  await takeSeen()
  const accounts = await call(client, 'listProviderAccounts', 'https://h/durastore?a=1', 'al ice', 'p&w=d+é')
  t.ok(accounts.ok)
  const [post] = await takeSeen()
  t.equal(post!.method, 'POST')
  t.equal(post!.url, '/cs/api/rest/duracloud/providerAccounts', 'credentials stay out of the URL')
  t.equal(post!.headers['content-type'], 'application/x-www-form-urlencoded')
  t.equal(post!.headers.accept, `${VENDOR}provideraccounts+json`)
  t.same(Object.fromEntries(new URLSearchParams(post!.body)), { url: 'https://h/durastore?a=1', username: 'al ice', password: 'p&w=d+é' })

  const old = new g.CloudSyncClient(`${base}/old/api/rest/service`)
  await takeSeen()
  const spaces = await call(old, 'listSpaces', 'https://h/d', 'a&b', 'p w', '#1')
  t.ok(spaces.ok)
  t.same(spaces.args[0], { spaces: [{ uri: `${base}/old/api/rest/duracloud/spaces?url=https%3A%2F%2Fh%2Fd&username=a%26b&password=p%20w&providerAccountId=%231`, method: 'GET' }] })
  const [first, second] = await takeSeen()
  t.equal(first!.method, 'POST')
  t.equal(second!.method, 'GET')
  const q = new URL(second!.url, base)
  t.same(Object.fromEntries(q.searchParams), { url: 'https://h/d', username: 'a&b', password: 'p w', providerAccountId: '#1' })
  t.same(g.notices, [])
})

t.test('default error handler (spec §7.2)', async (t) => {
  const g = page()
  const client = new g.CloudSyncClient(`${base}/cs/api/rest/service`)
  const fire = (uri: string) => new Promise<void>((resolve) => {
    const before = g.notices.length
    client.getTask!(uri)
    const wait = setInterval(() => {
      if (g.notices.length > before) {
        clearInterval(wait)
        resolve()
      }
    }, 5)
  })

  await fire(`${base}/status/503`)
  t.equal(g.notices.at(-1)!.kind, 'unavailable')
  t.equal(g.reloads, 1, '503 reloads')

  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port
      s.close(() => resolve(p))
    })
  })
  await fire(`http://127.0.0.1:${port}/gone`)
  t.equal(g.notices.at(-1)!.kind, 'unavailable')
  t.equal(g.notices.at(-1)!.failure.status, 0)
  t.equal(g.reloads, 2, 'status 0 reloads')

  await fire(`${base}/status/401`)
  t.equal(g.notices.at(-1)!.kind, 'expired')
  t.equal(g.reloads, 3)

  await fire(`${base}/html`)
  t.equal(g.notices.at(-1)!.kind, 'expired', '200 with an HTML login page counts as an expired session')
  t.equal(g.reloads, 4)

  await fire(`${base}/status/409`)
  const notice = g.notices.at(-1)!
  t.equal(notice.kind, 'error')
  t.match(notice.message, '409')
  t.match(notice.message, 'GET')
  t.match(notice.message, `${base}/status/409`)
  t.match(notice.message, 'cancel it first', 'the problem detail tells the user what to do')
  t.equal(g.reloads, 4, 'other errors do not reload')
  await takeSeen()
})

t.test('a failed construction goes to the default handler', async (t) => {
  const g = page()
  const client = new g.CloudSyncClient(`${base}/cs/api/rest/broken/service`)
  t.equal(client.info, undefined)
  t.equal(g.notices.length, 1)
  t.equal(g.notices[0]!.kind, 'expired', 'a 200 without service info is treated like a login page')
  t.throws(() => client.listUsers!(), { name: 'TypeError', message: /service info has no usersUri/ }, 'collection methods explain that the info is missing')
  await takeSeen()
})

t.test('Promise API: create(), client.promises, RequestError, handleError', async (t) => {
  const g = page()
  await takeSeen()
  const created = g.CloudSyncClient.create!(`${base}/cs/api/rest/service`) as Promise<Client>
  t.ok(created instanceof (vm.runInContext('Promise', g as unknown as vm.Context) as PromiseConstructor), 'create returns a Promise')
  const client = await created
  t.equal(client.info?.tasksUri, `${base}/cs/api/rest/tasks`)
  const tasks = await client.promises.listTasks!()
  t.same(tasks, { tasks: [{ uri: `${base}/cs/api/rest/tasks`, method: 'GET' }] })
  t.same(await client.promises.deleteTask!(`${base}/cs/api/rest/tasks/1`), undefined)
  const updated = await client.promises.updateTask!(`${base}/cs/api/rest/tasks/1`, { task: { state: 'Canceling' } })
  t.same(updated, { task: { uri: `${base}/cs/api/rest/tasks/1`, method: 'PATCH' } })

  const err = await (client.promises.getTask!(`${base}/status/409`) as Promise<unknown>).then(() => undefined, (e: unknown) => e) as Record<string, unknown>
  t.ok(err instanceof (g.CloudSyncClient.RequestError as unknown as new () => object))
  t.equal(err.status, 409)
  t.equal(err.method, 'GET')
  t.equal((err.problem as { detail: string }).detail, 'The task is active; cancel it first.')
  t.same(g.notices, [], 'Promise rejections do not show notices by themselves')
  g.CloudSyncClient.handleError!(err)
  t.equal(g.notices.length, 1)
  t.equal(g.notices[0]!.kind, 'error')

  const bad = await (g.CloudSyncClient.create!(`${base}/status/401`) as Promise<unknown>).then(() => undefined, (e: unknown) => e) as Record<string, unknown>
  t.equal(bad.status, 401)
  await takeSeen()
})
