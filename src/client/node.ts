/**
 * cloudsync-kit/client — a typed CloudSync API client for Node (and any
 * runtime with `fetch`).
 *
 * Mirrors the browser library's methods (spec §7.2) as Promise methods that
 * take and return plain entity objects: `createTask({...})` resolves with a
 * `Task`, `listTasks()` with `Task[]`. It authenticates with HTTP Basic, a
 * session cookie, or a form `login()`; it sends the vendor `Accept` and
 * `Content-Type` of every operation and `X-Requested-With: XMLHttpRequest`
 * (so cookie-authenticated writes pass the CSRF check and a 401 never asks
 * for a browser dialog). Failures reject with {@link CloudSyncError}.
 *
 * The client only ever talks to the origin of `serviceUri`: an entity URI on
 * another origin is refused, so credentials are never sent elsewhere.
 */
import { CloudSyncError } from './error.js'
import type { CloudSyncErrorKind } from './error.js'
import type {
  DataInput, NewObjectSet, NewObjectStore, NewTask, NewUser, ObjectSet, ObjectSetChanges, ObjectStore,
  ProblemDocument, ProviderAccount, ServiceInfo, ServiceInit, Space, Task, TaskChanges, TaskLog, User, UserChanges
} from './types.js'

export { CloudSyncError } from './error.js'
export type { CloudSyncErrorKind, CloudSyncErrorInit } from './error.js'
export type * from './types.js'

/** How the client proves who it is. */
export type ClientAuth =
  /** HTTP Basic on every request (scripts). */
  | { username: string; password: string }
  /** An existing session: a `Cookie` header value such as `cloudsync.sid=…`. */
  | { cookie: string }

export interface CloudSyncNodeClientOptions {
  /** The service resource, `{origin}{mount}/api/rest/service`. Required. */
  serviceUri: string | URL
  /** Credentials. Default: none (only `getServiceInfo`, `initialize` and `login` work). */
  auth?: ClientAuth
  /** The `fetch` to use. Default: the global `fetch`. */
  fetch?: typeof fetch
  /** Per-request time limit in milliseconds; 0 disables it. Default 30 000. */
  timeoutMs?: number
  /** The form-login URL. Default: `{mount}/login`, i.e. `serviceUri` resolved against `../../login`. */
  loginUri?: string | URL
  /** The logout URL. Default: `{mount}/logout`. */
  logoutUri?: string | URL
}

/** Anything that names an entity: its `uri`, as a string or URL, or the entity itself. */
export type EntityRef = string | URL | { readonly uri: string }

/** A task log or the URI of a log or of its content. */
export type TaskLogRef = string | URL | { readonly contentUri: string }

const VENDOR = 'application/vnd.fcrepo-cloudsync.'
const vj = (name: string): string => `${VENDOR}${name}+json`
const FORM = 'application/x-www-form-urlencoded'
const MAX_ERROR_BODY = 2000

type InfoLink = 'usersUri' | 'currentUserUri' | 'tasksUri' | 'objectSetsUri' | 'objectStoresUri' | 'taskLogsUri' | 'providerAccountsUri' | 'spacesUri'

interface Outgoing {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE'
  url: URL
  accept: string
  contentType?: string
  body?: string
}

/**
 * A CloudSync API client.
 *
 * @example
 * import { CloudSyncNodeClient } from 'cloudsync-kit/client'
 * const client = new CloudSyncNodeClient({
 *   serviceUri: 'http://localhost:8080/cloudsync/api/rest/service',
 *   auth: { username: 'admin', password: 's3cret' }
 * })
 * const task = await client.createTask({ name: 'Nightly list', type: 'list', state: 'Starting',
 *   data: { setUri: sets[0].uri, storeUri: store.uri } })
 */
export class CloudSyncNodeClient {
  /** The service URI the client was created with (absolute). */
  readonly serviceUri: string
  /** The last service info fetched, or `undefined` before the first request. */
  info: ServiceInfo | undefined

  readonly #origin: string
  readonly #fetch: typeof fetch
  readonly #timeoutMs: number
  readonly #loginUri: URL
  readonly #logoutUri: URL
  #basic: string | undefined
  readonly #cookies = new Map<string, string>()
  #infoPromise: Promise<ServiceInfo> | undefined

  constructor(options: CloudSyncNodeClientOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('CloudSyncNodeClient: options must be an object')
    const service = toUrl(options.serviceUri, 'serviceUri')
    this.serviceUri = service.href
    this.#origin = service.origin
    this.#loginUri = options.loginUri === undefined ? new URL('../../login', service) : toUrl(options.loginUri, 'loginUri')
    this.#logoutUri = options.logoutUri === undefined ? new URL('../../logout', service) : toUrl(options.logoutUri, 'logoutUri')
    if (this.#loginUri.origin !== this.#origin || this.#logoutUri.origin !== this.#origin) {
      throw new TypeError('CloudSyncNodeClient: options "loginUri" and "logoutUri" must be on the origin of "serviceUri"')
    }
    if (options.fetch !== undefined && typeof options.fetch !== 'function') throw new TypeError('CloudSyncNodeClient: option "fetch" must be a function')
    this.#fetch = options.fetch ?? globalThis.fetch
    const timeout = options.timeoutMs ?? 30_000
    if (!(Number.isFinite(timeout) && timeout >= 0 && timeout <= 2_147_483_647)) throw new TypeError('CloudSyncNodeClient: option "timeoutMs" must be a non-negative number of milliseconds')
    this.#timeoutMs = timeout
    const auth = options.auth
    if (auth !== undefined) {
      if (typeof auth !== 'object' || auth === null) throw new TypeError('CloudSyncNodeClient: option "auth" must be an object')
      if ('cookie' in auth) {
        if (typeof auth.cookie !== 'string' || auth.cookie.trim() === '') throw new TypeError('CloudSyncNodeClient: option "auth.cookie" must be a non-empty Cookie header value')
        for (const pair of auth.cookie.split(';')) {
          const eq = pair.indexOf('=')
          if (eq > 0) this.#cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim())
        }
      } else {
        if (typeof auth.username !== 'string' || typeof auth.password !== 'string') throw new TypeError('CloudSyncNodeClient: option "auth" needs string "username" and "password"')
        if (auth.username.includes(':')) throw new TypeError('CloudSyncNodeClient: option "auth.username" cannot contain ":" (HTTP Basic)')
        this.#basic = basic(auth.username, auth.password)
      }
    }
  }

  // -------------------------------------------------------------------------
  // Session

  /**
   * Log in with the login form (`POST {mount}/login`) and keep the session
   * cookie for later requests; Basic credentials given at construction are
   * dropped. Rejects with status 401 for wrong credentials, 429 when the
   * account is throttled (see `retryAfter`).
   *
   * @example
   * const client = new CloudSyncNodeClient({ serviceUri })
   * await client.login('alice', 's3cret')
   */
  async login(username: string, password: string): Promise<void> {
    if (typeof username !== 'string' || typeof password !== 'string') throw new TypeError('login: username and password must be strings')
    const body = new URLSearchParams({ username, password }).toString()
    const response = await this.#exchange({ method: 'POST', url: this.#loginUri, accept: 'text/html, */*;q=0.1', contentType: FORM, body }, false)
    const status = response.status
    const setsCookie = response.headers.getSetCookie().length > 0
    await discard(response)
    if (status >= 300 && status < 400 && setsCookie) {
      this.#basic = undefined
      return
    }
    if (status === 401) {
      throw new CloudSyncError('Login failed: unknown user, wrong password, or a disabled account.', { kind: 'http', status, method: 'POST', url: this.#loginUri.href })
    }
    throw await failure(response, 'POST', this.#loginUri.href, status === 429 ? 'Too many failed logins for this account; wait before trying again.' : undefined)
  }

  /**
   * End the session (`POST {mount}/logout`) and forget its cookie.
   *
   * @example
   * await client.logout()
   */
  async logout(): Promise<void> {
    const response = await this.#exchange({ method: 'POST', url: this.#logoutUri, accept: '*/*' }, false)
    await discard(response)
    this.#cookies.clear()
    if (response.status >= 400) throw await failure(response, 'POST', this.#logoutUri.href)
  }

  /** The current `Cookie` header value (e.g. to hand a session to another tool), or `undefined`. */
  get cookie(): string | undefined {
    if (this.#cookies.size === 0) return undefined
    let header = ''
    for (const [name, value] of this.#cookies) header += `${header === '' ? '' : '; '}${name}=${value}`
    return header
  }

  // -------------------------------------------------------------------------
  // Service

  /**
   * `GET service` (open). Also refreshes {@link info}.
   *
   * @example
   * const { initialized, version } = await client.getServiceInfo()
   */
  async getServiceInfo(): Promise<ServiceInfo> {
    const info = unwrap<ServiceInfo>(await this.#json('GET', this.serviceUri, 'serviceinfo'), 'service', 'GET', this.serviceUri)
    this.info = info
    return info
  }

  /**
   * First-run initialization (`POST service`): creates the first administrator.
   * Rejects with 409 when the service is already initialized.
   *
   * @example
   * await client.initialize({ initialAdminUsername: 'admin', initialAdminPassword: 's3cret' })
   */
  async initialize(init: ServiceInit): Promise<ServiceInfo> {
    const body = { serviceInit: pick(init, ['initialAdminUsername', 'initialAdminPassword']) }
    const info = unwrap<ServiceInfo>(await this.#json('POST', this.serviceUri, 'serviceinfo', 'serviceinit', body), 'service', 'POST', this.serviceUri)
    this.info = info
    return info
  }

  // -------------------------------------------------------------------------
  // Users

  /** `POST users` (admins). @example await client.createUser({ name: 'bob', password: 'pw', admin: false, enabled: true }) */
  async createUser(user: NewUser): Promise<User> {
    return this.#create<User>('usersUri', 'user', pick(user, ['name', 'password', 'admin', 'enabled']))
  }

  /** `GET users`. @example const users = await client.listUsers() */
  async listUsers(): Promise<User[]> {
    return this.#list<User>('usersUri', 'users')
  }

  /** `GET` one user. @example const user = await client.getUser(users[0]) */
  async getUser(user: EntityRef): Promise<User> {
    return this.#get<User>(user, 'user')
  }

  /** `GET users/current`: who the client is. @example const me = await client.getCurrentUser() */
  async getCurrentUser(): Promise<User> {
    const url = await this.#link('currentUserUri')
    return unwrap<User>(await this.#json('GET', url, 'user'), 'user', 'GET', url)
  }

  /** `PATCH` a user; absent fields keep their value. @example await client.updateUser(bob, { enabled: false }) */
  async updateUser(user: EntityRef, changes: UserChanges): Promise<User> {
    return this.#update<User>(user, 'user', pick(changes, ['name', 'password', 'admin', 'enabled']))
  }

  /** `DELETE` a user (admins; not oneself). @example await client.deleteUser(bob) */
  async deleteUser(user: EntityRef): Promise<void> {
    return this.#delete(user)
  }

  // -------------------------------------------------------------------------
  // Tasks

  /** `POST tasks`. `data` may be an object; it is sent as JSON text. @example await client.createTask({ name: 'L', type: 'list', state: 'Idle', data: { setUri, storeUri } }) */
  async createTask(task: NewTask): Promise<Task> {
    return this.#create<Task>('tasksUri', 'task', withData(pick(task, ['name', 'type', 'state', 'schedule', 'data'])))
  }

  /** `GET tasks`. @example const tasks = await client.listTasks() */
  async listTasks(): Promise<Task[]> {
    return this.#list<Task>('tasksUri', 'tasks')
  }

  /** `GET` one task. @example const fresh = await client.getTask(task) */
  async getTask(task: EntityRef): Promise<Task> {
    return this.#get<Task>(task, 'task')
  }

  /** `PATCH` a task, e.g. to run, pause, resume or cancel it. @example await client.updateTask(task, { state: 'Canceling' }) */
  async updateTask(task: EntityRef, changes: TaskChanges): Promise<Task> {
    return this.#update<Task>(task, 'task', withData(pick(changes, ['name', 'type', 'state', 'schedule', 'data'])))
  }

  /** `DELETE` an idle task without logs. @example await client.deleteTask(task) */
  async deleteTask(task: EntityRef): Promise<void> {
    return this.#delete(task)
  }

  // -------------------------------------------------------------------------
  // Object sets

  /** `POST objectSets`. @example await client.createObjectSet({ name: 'Demo', type: 'pidPattern', data: 'demo:*' }) */
  async createObjectSet(set: NewObjectSet): Promise<ObjectSet> {
    return this.#create<ObjectSet>('objectSetsUri', 'objectSet', withData(pick(set, ['name', 'type', 'data'])))
  }

  /** `GET objectSets`. @example const sets = await client.listObjectSets() */
  async listObjectSets(): Promise<ObjectSet[]> {
    return this.#list<ObjectSet>('objectSetsUri', 'objectSets')
  }

  /** `GET` one object set. @example await client.getObjectSet(set.uri) */
  async getObjectSet(set: EntityRef): Promise<ObjectSet> {
    return this.#get<ObjectSet>(set, 'objectSet')
  }

  /** `PATCH` an object set. @example await client.updateObjectSet(set, { data: 'demo:1\ndemo:2', type: 'pidList' }) */
  async updateObjectSet(set: EntityRef, changes: ObjectSetChanges): Promise<ObjectSet> {
    return this.#update<ObjectSet>(set, 'objectSet', withData(pick(changes, ['name', 'type', 'data'])))
  }

  /** `DELETE` an object set no task uses. @example await client.deleteObjectSet(set) */
  async deleteObjectSet(set: EntityRef): Promise<void> {
    return this.#delete(set)
  }

  // -------------------------------------------------------------------------
  // Object stores

  /** `POST objectStores`. @example await client.createObjectStore({ name: 'Backup', type: 'filesystem', data: { path: '/srv/backup' } }) */
  async createObjectStore(store: NewObjectStore): Promise<ObjectStore> {
    return this.#create<ObjectStore>('objectStoresUri', 'objectStore', withData(pick(store, ['name', 'type', 'data'])))
  }

  /** `GET objectStores`. @example const stores = await client.listObjectStores() */
  async listObjectStores(): Promise<ObjectStore[]> {
    return this.#list<ObjectStore>('objectStoresUri', 'objectStores')
  }

  /** `GET` one object store (its `data` never contains a password). @example await client.getObjectStore(store) */
  async getObjectStore(store: EntityRef): Promise<ObjectStore> {
    return this.#get<ObjectStore>(store, 'objectStore')
  }

  /** `DELETE` an object store no task uses. @example await client.deleteObjectStore(store) */
  async deleteObjectStore(store: EntityRef): Promise<void> {
    return this.#delete(store)
  }

  // -------------------------------------------------------------------------
  // Task logs

  /** `GET taskLogs` (unfinished first, then newest first). @example const logs = await client.listTaskLogs() */
  async listTaskLogs(): Promise<TaskLog[]> {
    return this.#list<TaskLog>('taskLogsUri', 'taskLogs')
  }

  /** `GET` one task log. @example const log = await client.getTaskLog(task.activeLogUri!) */
  async getTaskLog(log: EntityRef): Promise<TaskLog> {
    return this.#get<TaskLog>(log, 'taskLog')
  }

  /**
   * `GET taskLogs/{id}/content`: the log text. Accepts a task log, its
   * `contentUri`, or its `uri`.
   *
   * @example
   * console.log(await client.getTaskLogContent(log))
   */
  async getTaskLogContent(log: TaskLogRef): Promise<string> {
    let ref: string
    if (typeof log === 'object' && log !== null && !(log instanceof URL)) ref = log.contentUri
    else {
      ref = String(log)
      const path = ref.split(/[?#]/, 1)[0]!
      if (!path.endsWith('/content')) ref = `${path.replace(/\/+$/, '')}/content`
    }
    const url = this.#resolve(ref)
    const response = await this.#send({ method: 'GET', url, accept: 'text/plain' })
    return response.text()
  }

  /** `DELETE` a finished task log. @example await client.deleteTaskLog(log) */
  async deleteTaskLog(log: EntityRef): Promise<void> {
    return this.#delete(log)
  }

  // -------------------------------------------------------------------------
  // DuraCloud look-ups

  /**
   * The storage-provider accounts of a DuraCloud instance. The credentials
   * travel in a form body (op #29); servers without it get the GET form.
   *
   * @example
   * const accounts = await client.listProviderAccounts('https://demo.duracloud.org/durastore', 'alice', 'pw')
   */
  async listProviderAccounts(url: string, username: string, password: string): Promise<ProviderAccount[]> {
    const params = new URLSearchParams({ url, username, password })
    return this.#lookup<ProviderAccount>('providerAccountsUri', 'provideraccounts', 'providerAccounts', params)
  }

  /**
   * The spaces of one DuraCloud provider account (op #30, GET fallback #28).
   *
   * @example
   * const spaces = await client.listSpaces(url, 'alice', 'pw', accounts[0].id)
   */
  async listSpaces(url: string, username: string, password: string, providerAccountId: string): Promise<Space[]> {
    const params = new URLSearchParams({ url, username, password, providerAccountId })
    return this.#lookup<Space>('spacesUri', 'spaces', 'spaces', params)
  }

  // -------------------------------------------------------------------------
  // Plumbing

  async #lookup<T>(link: InfoLink, type: string, key: string, params: URLSearchParams): Promise<T[]> {
    const url = await this.#link(link)
    try {
      return list<T>(await this.#json('POST', url, type, undefined, params), key, 'POST', url)
    } catch (err) {
      // The original service had only the GET form of the look-ups.
      if (!(err instanceof CloudSyncError && err.status === 405)) throw err
    }
    const get = new URL(url)
    get.search = params.toString()
    return list<T>(await this.#json('GET', get.href, type), key, 'GET', get.href)
  }

  async #create<T>(link: InfoLink, root: string, fields: Record<string, unknown>): Promise<T> {
    const url = await this.#link(link)
    return unwrap<T>(await this.#json('POST', url, root.toLowerCase(), root.toLowerCase(), { [root]: fields }), root, 'POST', url)
  }

  async #list<T>(link: InfoLink, key: string): Promise<T[]> {
    const url = await this.#link(link)
    return list<T>(await this.#json('GET', url, key.toLowerCase()), key, 'GET', url)
  }

  async #get<T>(ref: EntityRef, root: string): Promise<T> {
    const url = this.#resolve(ref).href
    return unwrap<T>(await this.#json('GET', url, root.toLowerCase()), root, 'GET', url)
  }

  async #update<T>(ref: EntityRef, root: string, fields: Record<string, unknown>): Promise<T> {
    const url = this.#resolve(ref).href
    return unwrap<T>(await this.#json('PATCH', url, root.toLowerCase(), root.toLowerCase(), { [root]: fields }), root, 'PATCH', url)
  }

  async #delete(ref: EntityRef): Promise<void> {
    const response = await this.#send({ method: 'DELETE', url: this.#resolve(ref), accept: '*/*' })
    await discard(response)
  }

  /** A collection link from the service info, fetching the info once. */
  async #link(name: InfoLink): Promise<string> {
    let info = this.info
    if (info === undefined) {
      // Concurrent first calls share one request; a failure is not cached.
      this.#infoPromise ??= this.getServiceInfo().finally(() => { this.#infoPromise = undefined })
      info = await this.#infoPromise
    }
    const link = info[name]
    if (typeof link !== 'string' || link === '') {
      throw new CloudSyncError(`The service info has no ${name}; is ${this.serviceUri} a CloudSync service?`, { kind: 'unexpected_response', status: 200, method: 'GET', url: this.serviceUri })
    }
    return link
  }

  /** Resolve an entity reference and refuse other origins (credentials stay home). */
  #resolve(ref: EntityRef): URL {
    const text = typeof ref === 'object' && ref !== null && !(ref instanceof URL) ? ref.uri : ref
    let url: URL
    try {
      url = new URL(String(text), this.serviceUri)
    } catch {
      throw new TypeError(`Not a URI: ${JSON.stringify(String(text))}`)
    }
    if (url.origin !== this.#origin) throw new TypeError(`Refusing to send a request to ${url.origin}: the client only talks to ${this.#origin}`)
    return url
  }

  /** Send with a vendor JSON type and return the parsed body (`undefined` for 204). */
  async #json(method: Outgoing['method'], url: string, accept: string, contentType?: string, body?: unknown): Promise<unknown> {
    const out: Outgoing = { method, url: this.#resolve(url), accept: vj(accept) }
    if (body instanceof URLSearchParams) {
      out.contentType = FORM
      out.body = body.toString()
    } else if (body !== undefined) {
      out.contentType = vj(contentType ?? accept)
      out.body = JSON.stringify(body)
    }
    const response = await this.#send(out)
    if (response.status === 204) return undefined
    const text = await response.text()
    try {
      return JSON.parse(text) as unknown
    } catch {
      throw new CloudSyncError(`${method} ${out.url.href} answered ${response.status} with a body that is not JSON (a login page?); check the credentials and the service URI.`, {
        kind: 'unexpected_response', status: response.status, method, url: out.url.href, body: text.slice(0, MAX_ERROR_BODY)
      })
    }
  }

  /** Send; resolve with a 2xx response, reject with CloudSyncError otherwise. */
  async #send(out: Outgoing): Promise<Response> {
    const response = await this.#exchange(out, true)
    if (response.status >= 200 && response.status < 300) return response
    throw await failure(response, out.method, out.url.href)
  }

  async #exchange(out: Outgoing, authenticate: boolean): Promise<Response> {
    const headers: Record<string, string> = { Accept: out.accept, 'X-Requested-With': 'XMLHttpRequest' }
    if (out.contentType !== undefined) headers['Content-Type'] = out.contentType
    if (authenticate && this.#basic !== undefined) headers.Authorization = this.#basic
    const cookie = this.cookie
    if (cookie !== undefined) headers.Cookie = cookie
    const init: RequestInit = { method: out.method, headers, redirect: 'manual' }
    if (out.body !== undefined) init.body = out.body
    if (this.#timeoutMs > 0) init.signal = AbortSignal.timeout(this.#timeoutMs)
    let response: Response
    try {
      response = await this.#fetch(out.url, init)
    } catch (err) {
      const timedOut = init.signal?.aborted === true
      const kind: CloudSyncErrorKind = timedOut ? 'timeout' : 'network'
      const message = timedOut
        ? `${out.method} ${out.url.href} got no answer within ${this.#timeoutMs} ms; check that the server is running.`
        : `${out.method} ${out.url.href} failed: the server could not be reached; check the service URI and that the server is running.`
      throw new CloudSyncError(message, { kind, status: 0, method: out.method, url: out.url.href, cause: err })
    }
    this.#storeCookies(response.headers.getSetCookie())
    return response
  }

  #storeCookies(setCookies: string[]): void {
    for (const line of setCookies) {
      const semi = line.indexOf(';')
      const pair = semi === -1 ? line : line.slice(0, semi)
      const eq = pair.indexOf('=')
      if (eq <= 0) continue
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const attrs = semi === -1 ? '' : line.slice(semi).toLowerCase()
      if (value === '' || EXPIRED.test(attrs) || pastExpiry(attrs)) this.#cookies.delete(name)
      else this.#cookies.set(name, value)
    }
  }
}

/**
 * Create a {@link CloudSyncNodeClient}.
 *
 * @example
 * const client = createClient({ serviceUri: 'http://localhost:8080/api/rest/service', auth: { username: 'admin', password: 'pw' } })
 */
export function createClient(options: CloudSyncNodeClientOptions): CloudSyncNodeClient {
  return new CloudSyncNodeClient(options)
}

// ---------------------------------------------------------------------------
// helpers

const EXPIRED = /;\s*max-age\s*=\s*(?:0|-\d+)\s*(?:;|$)/
const EXPIRES = /;\s*expires\s*=\s*([^;]+)/

function pastExpiry(attrs: string): boolean {
  const m = EXPIRES.exec(attrs)
  if (m === null) return false
  const at = Date.parse(m[1]!)
  return Number.isFinite(at) && at <= Date.now()
}

function toUrl(value: unknown, option: string): URL {
  if (typeof value !== 'string' && !(value instanceof URL)) throw new TypeError(`CloudSyncNodeClient: option "${option}" must be an absolute http(s) URL`)
  let url: URL
  try {
    url = new URL(String(value))
  } catch {
    throw new TypeError(`CloudSyncNodeClient: option "${option}" must be an absolute http(s) URL`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`CloudSyncNodeClient: option "${option}" must be an absolute http(s) URL`)
  return url
}

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`
}

/** Copy the named fields that are present (not `undefined`). */
function pick<T extends object>(source: T, keys: ReadonlyArray<keyof T & string>): Record<string, unknown> {
  if (typeof source !== 'object' || source === null) throw new TypeError('Expected an object of entity fields')
  const out: Record<string, unknown> = {}
  for (const key of keys) {
    const value = source[key]
    if (value !== undefined) out[key] = value
  }
  return out
}

/** `data` travels as JSON text; objects are serialized for convenience. */
function withData(fields: Record<string, unknown>): Record<string, unknown> {
  const data = fields.data as DataInput | undefined
  if (data !== undefined && typeof data !== 'string') fields.data = JSON.stringify(data)
  return fields
}

function unwrap<T>(body: unknown, root: string, method: string, url: string): T {
  const value = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[root] : undefined
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw unexpected(root, method, url)
  return value as T
}

function list<T>(body: unknown, key: string, method: string, url: string): T[] {
  const value = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[key] : undefined
  if (!Array.isArray(value)) throw unexpected(key, method, url)
  return value as T[]
}

function unexpected(root: string, method: string, url: string): CloudSyncError {
  return new CloudSyncError(`${method} ${url} answered without a "${root}" member; is this a CloudSync service?`, { kind: 'unexpected_response', status: 200, method, url })
}

async function discard(response: Response): Promise<void> {
  try {
    await response.body?.cancel()
  } catch {
    // Already consumed or closed.
  }
}

/** Turn an error response into a CloudSyncError carrying the problem document. */
async function failure(response: Response, method: string, url: string, fallback?: string): Promise<CloudSyncError> {
  let text = ''
  try {
    text = await response.text()
  } catch {
    // The body is optional for the error.
  }
  const problem = parseProblem(text, response.headers.get('content-type'))
  const retryHeader = response.headers.get('retry-after')
  const retryAfter = retryHeader !== null && /^\d+$/.test(retryHeader.trim()) ? Number(retryHeader) : undefined
  const detail = problem?.detail ?? fallback
  const message = `${method} ${url} failed with ${response.status}${response.statusText ? ` ${response.statusText}` : ''}${detail ? `: ${detail}` : ''}`
  return new CloudSyncError(message, {
    kind: 'http', status: response.status, method, url, problem,
    body: problem === undefined && text !== '' ? text.slice(0, MAX_ERROR_BODY) : undefined,
    retryAfter
  })
}

function parseProblem(text: string, contentType: string | null): ProblemDocument | undefined {
  if (text === '' || contentType === null || !contentType.toLowerCase().includes('json')) return undefined
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  const p = value as Record<string, unknown>
  if (typeof p.status !== 'number' || typeof p.title !== 'string') return undefined
  return {
    type: typeof p.type === 'string' ? p.type : 'about:blank',
    title: p.title,
    status: p.status,
    detail: typeof p.detail === 'string' ? p.detail : '',
    instance: typeof p.instance === 'string' ? p.instance : ''
  }
}
