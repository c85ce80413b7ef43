/**
 * cloudsync-api.js — the CloudSync browser client library (spec §7).
 *
 * Served as `{mount}/js/cloudsync-api.js` and `{mount}/js/cloudsync-client.js`.
 * A classic script with no dependencies: it defines one global,
 * `CloudSyncClient`, with the surface of the original jQuery-based library
 * (every method ends with `success, async, error`) plus Promise variants
 * under `client.promises` and `CloudSyncClient.create()`.
 *
 * This file must stay a script: no `import`/`export`. It is built on its own
 * with `tsc -p tsconfig.client.json` (ES2017, DOM) into
 * `dist/public/js/cloudsync-api.js` and `cloudsync-api.d.ts`.
 */

// ---------------------------------------------------------------------------
// Entities (spec §3). Optional fields are absent when they have no value.

/** Service info (spec §3.3): `client.info`. */
interface CloudSyncServiceInfo {
  buildDate: string
  currentUserUri: string
  initialized: boolean
  objectSetsUri: string
  objectStoresUri: string
  providerAccountsUri: string
  spacesUri: string
  taskLogsUri: string
  tasksUri: string
  usersUri: string
  version: string
}
interface CloudSyncUser { admin: boolean; enabled: boolean; name: string; uri: string }
interface CloudSyncTask {
  activeLogUri?: string
  /** JSON text. */
  data: string
  name: string
  schedule?: string
  state: 'Idle' | 'Starting' | 'Running' | 'Pausing' | 'Paused' | 'Resuming' | 'Canceling'
  type: 'list' | 'copy'
  uri: string
}
interface CloudSyncObjectSet { data: string; name: string; type: 'pidPattern' | 'pidList' | 'query'; uri: string }
interface CloudSyncObjectStore { data: string; name: string; type: 'fedora' | 'duracloud' | 'filesystem'; uri: string }
interface CloudSyncTaskLog {
  contentUri: string
  finishDate?: string
  resultType: 'Incomplete' | 'Succeeded' | 'Failed' | 'Canceled'
  startDate: string
  taskUri: string
  uri: string
}
interface CloudSyncProviderAccount { id: string; primary: boolean; type: string }
interface CloudSyncSpace { id: string }

/** Request fields: strings, and for booleans also `"true"`/`"false"` (spec §3.1). */
type CloudSyncFields = Record<string, string | boolean | number | undefined>

// ---------------------------------------------------------------------------
// The operations: [leading arguments, parsed response].

interface CloudSyncOperations {
  /** GET `serviceUri`. Also refreshes `client.info`. */
  getServiceInfo: [[], { service: CloudSyncServiceInfo }]
  /** POST `serviceUri`: first-run initialization, `{serviceInit: {initialAdminUsername, initialAdminPassword}}`. */
  initialize: [[data: { serviceInit: { initialAdminUsername: string; initialAdminPassword: string } }], { service: CloudSyncServiceInfo }]
  /** POST `info.usersUri`, `{user: {name, password, admin, enabled}}` (admins). */
  createUser: [[data: { user: CloudSyncFields }], { user: CloudSyncUser }]
  /** GET `info.usersUri`. */
  listUsers: [[], { users: CloudSyncUser[] }]
  /** GET a user's `uri`. */
  getUser: [[uri: string], { user: CloudSyncUser }]
  /** GET `info.currentUserUri`. */
  getCurrentUser: [[], { user: CloudSyncUser }]
  /** PATCH a user's `uri`, `{user: {…changed fields}}`. */
  updateUser: [[uri: string, data: { user: CloudSyncFields }], { user: CloudSyncUser }]
  /** DELETE a user's `uri` (admins; not oneself). */
  deleteUser: [[uri: string], undefined]
  /** POST `info.tasksUri`, `{task: {name, type, state, data}}`. */
  createTask: [[data: { task: CloudSyncFields }], { task: CloudSyncTask }]
  /** GET `info.tasksUri`. */
  listTasks: [[], { tasks: CloudSyncTask[] }]
  /** GET a task's `uri`. */
  getTask: [[uri: string], { task: CloudSyncTask }]
  /** PATCH a task's `uri`, e.g. `{task: {state: 'Pausing'}}`. */
  updateTask: [[uri: string, data: { task: CloudSyncFields }], { task: CloudSyncTask }]
  /** DELETE a task's `uri` (idle, without logs). */
  deleteTask: [[uri: string], undefined]
  /** POST `info.objectSetsUri`, `{objectSet: {name, type, data}}`. */
  createObjectSet: [[data: { objectSet: CloudSyncFields }], { objectSet: CloudSyncObjectSet }]
  /** GET `info.objectSetsUri`. */
  listObjectSets: [[], { objectSets: CloudSyncObjectSet[] }]
  /** GET an object set's `uri`. */
  getObjectSet: [[uri: string], { objectSet: CloudSyncObjectSet }]
  /** PATCH an object set's `uri`. */
  updateObjectSet: [[uri: string, data: { objectSet: CloudSyncFields }], { objectSet: CloudSyncObjectSet }]
  /** DELETE an object set's `uri` (not used by a task). */
  deleteObjectSet: [[uri: string], undefined]
  /** POST `info.objectStoresUri`, `{objectStore: {name, type, data}}`. */
  createObjectStore: [[data: { objectStore: CloudSyncFields }], { objectStore: CloudSyncObjectStore }]
  /** GET `info.objectStoresUri`. */
  listObjectStores: [[], { objectStores: CloudSyncObjectStore[] }]
  /** GET an object store's `uri`. */
  getObjectStore: [[uri: string], { objectStore: CloudSyncObjectStore }]
  /** DELETE an object store's `uri` (not used by a task). */
  deleteObjectStore: [[uri: string], undefined]
  /** GET `info.taskLogsUri`. */
  listTaskLogs: [[], { taskLogs: CloudSyncTaskLog[] }]
  /** GET a task log's `uri`. Open its `contentUri` for the text. */
  getTaskLog: [[uri: string], { taskLog: CloudSyncTaskLog }]
  /** DELETE a task log's `uri` (not the active log of a running task). */
  deleteTaskLog: [[uri: string], undefined]
  /** DuraCloud provider accounts: form POST to `info.providerAccountsUri` (GET with an encoded query on servers without it). */
  listProviderAccounts: [[url: string, username: string, password: string], { providerAccounts: CloudSyncProviderAccount[] }]
  /** DuraCloud spaces of one account: form POST to `info.spacesUri` (GET fallback as above). */
  listSpaces: [[url: string, username: string, password: string, providerAccountId: string], { spaces: CloudSyncSpace[] }]
}

/** `success(data, textStatus, xhr)`: `data` is the parsed JSON (undefined for 204). */
type CloudSyncSuccess<R> = (data: R, textStatus: string, xhr: XMLHttpRequest) => void
/** `error(xhr, method, url, textStatus, errorThrown)`; replaces the default error handler. */
type CloudSyncErrorCallback = (xhr: XMLHttpRequest, method: string, url: string, textStatus: string, errorThrown: string) => void

/** The callback methods: leading arguments, then `success, async, error`. */
type CloudSyncCallbackMethods = {
  [K in keyof CloudSyncOperations]: (
    ...args: [...CloudSyncOperations[K][0], success?: CloudSyncSuccess<CloudSyncOperations[K][1]> | null, async?: boolean | null, error?: CloudSyncErrorCallback | null]
  ) => void
}
/** The Promise methods (`client.promises`): leading arguments only; reject with `CloudSyncClient.RequestError`. */
type CloudSyncPromiseMethods = {
  [K in keyof CloudSyncOperations]: (...args: CloudSyncOperations[K][0]) => Promise<CloudSyncOperations[K][1]>
}

/** A CloudSync API client bound to one service. */
interface CloudSyncClient extends CloudSyncCallbackMethods {
  /** `{api}/service`, as given to the constructor. */
  readonly serviceUri: string
  /** The service info; `undefined` only if the constructor's request failed. */
  info: CloudSyncServiceInfo | undefined
  /** Promise-returning variants of every method: `client.promises.listTasks().then(…)`. */
  readonly promises: CloudSyncPromiseMethods
}

/** What the default error handler is telling the user. */
type CloudSyncNoticeKind = 'unavailable' | 'expired' | 'error'

/** The failed request a notice is about. */
interface CloudSyncFailure {
  status: number
  method: string
  url: string
  /** The problem document's `detail`, when the server sent one. */
  detail: string | undefined
}

/** A rejected Promise's reason: the failed request with the callback arguments. */
interface CloudSyncRequestError extends Error {
  readonly xhr: XMLHttpRequest
  /** HTTP status; 0 when no answer arrived. */
  readonly status: number
  readonly method: string
  readonly url: string
  /** `error`, `parsererror`, `timeout` or `abort`. */
  readonly textStatus: string
  readonly errorThrown: string
  /** The parsed problem document, when the response carried one. */
  readonly problem: { type?: string; title?: string; status?: number; detail?: string; instance?: string } | undefined
}

interface CloudSyncClientConstructor {
  /**
   * Synchronously `GET serviceUri` and set `info` (spec §7.1). Pass `info`
   * to skip the request (as `create()` does).
   */
  new (serviceUri: string, info?: CloudSyncServiceInfo): CloudSyncClient
  readonly prototype: CloudSyncClient
  /** Construct asynchronously: resolves once the service info has loaded. */
  create(serviceUri: string): Promise<CloudSyncClient & { info: CloudSyncServiceInfo }>
  /**
   * Shows a notice from the default error handler. Default: `alert(message)`.
   * Replace it to show the notice in the page (or to observe it in tests).
   */
  onNotice: (message: string, kind: CloudSyncNoticeKind, failure: CloudSyncFailure) => void
  /** Reloads the page after an "unavailable" or "expired" notice. Default: `location.reload()`. */
  reload: () => void
  /** Used when a method gets no `error` callback (spec §7.2). Replaceable. */
  defaultErrorHandler: CloudSyncErrorCallback
  /** Pass a Promise rejection to the default error handler: `.catch(CloudSyncClient.handleError)`. */
  handleError(err: unknown): void
  /** The rejection type of the Promise methods. */
  readonly RequestError: new (xhr: XMLHttpRequest, method: string, url: string, textStatus: string, errorThrown: string) => CloudSyncRequestError
}

// `var`, not `class`: loading the script twice (both file names) must not throw.
var CloudSyncClient: CloudSyncClientConstructor = (function (): CloudSyncClientConstructor {
  'use strict'

  const VENDOR = 'application/vnd.fcrepo-cloudsync.'
  const FORM = 'application/x-www-form-urlencoded'

  type Name = keyof CloudSyncOperations
  type InfoLink = 'usersUri' | 'currentUserUri' | 'tasksUri' | 'objectSetsUri' | 'objectStoresUri' | 'taskLogsUri' | 'providerAccountsUri' | 'spacesUri'

  interface Route {
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE'
    /** Where the URL comes from: the service URI, a `uri` argument, or an `info` link. */
    to: 'service' | 'uri' | InfoLink
    /** Vendor type name for `Accept`; absent means `*\/*` (deletes). */
    type?: string
    /** Vendor type name of the JSON body argument. */
    body?: string
    /** Form field names taken from the leading arguments (look-ups). */
    form?: string[]
  }

  const ROUTES: { [K in Name]: Route } = {
    getServiceInfo: { method: 'GET', to: 'service', type: 'serviceinfo' },
    initialize: { method: 'POST', to: 'service', type: 'serviceinfo', body: 'serviceinit' },
    createUser: { method: 'POST', to: 'usersUri', type: 'user', body: 'user' },
    listUsers: { method: 'GET', to: 'usersUri', type: 'users' },
    getUser: { method: 'GET', to: 'uri', type: 'user' },
    getCurrentUser: { method: 'GET', to: 'currentUserUri', type: 'user' },
    updateUser: { method: 'PATCH', to: 'uri', type: 'user', body: 'user' },
    deleteUser: { method: 'DELETE', to: 'uri' },
    createTask: { method: 'POST', to: 'tasksUri', type: 'task', body: 'task' },
    listTasks: { method: 'GET', to: 'tasksUri', type: 'tasks' },
    getTask: { method: 'GET', to: 'uri', type: 'task' },
    updateTask: { method: 'PATCH', to: 'uri', type: 'task', body: 'task' },
    deleteTask: { method: 'DELETE', to: 'uri' },
    createObjectSet: { method: 'POST', to: 'objectSetsUri', type: 'objectset', body: 'objectset' },
    listObjectSets: { method: 'GET', to: 'objectSetsUri', type: 'objectsets' },
    getObjectSet: { method: 'GET', to: 'uri', type: 'objectset' },
    updateObjectSet: { method: 'PATCH', to: 'uri', type: 'objectset', body: 'objectset' },
    deleteObjectSet: { method: 'DELETE', to: 'uri' },
    createObjectStore: { method: 'POST', to: 'objectStoresUri', type: 'objectstore', body: 'objectstore' },
    listObjectStores: { method: 'GET', to: 'objectStoresUri', type: 'objectstores' },
    getObjectStore: { method: 'GET', to: 'uri', type: 'objectstore' },
    deleteObjectStore: { method: 'DELETE', to: 'uri' },
    listTaskLogs: { method: 'GET', to: 'taskLogsUri', type: 'tasklogs' },
    getTaskLog: { method: 'GET', to: 'uri', type: 'tasklog' },
    deleteTaskLog: { method: 'DELETE', to: 'uri' },
    listProviderAccounts: { method: 'POST', to: 'providerAccountsUri', type: 'provideraccounts', form: ['url', 'username', 'password'] },
    listSpaces: { method: 'POST', to: 'spacesUri', type: 'spaces', form: ['url', 'username', 'password', 'providerAccountId'] }
  }

  /** How many leading arguments a method takes before `success, async, error`. */
  function arity(route: Route): number {
    return (route.to === 'uri' ? 1 : 0) + (route.body !== undefined ? 1 : 0) + (route.form !== undefined ? route.form.length : 0)
  }

  interface Plan {
    method: string
    url: string
    accept: string
    contentType?: string
    body?: string
    /** Tried when the server answers 405 (servers with only the GET look-ups). */
    fallback?: Plan
  }

  type Done = (data: unknown, textStatus: string, xhr: XMLHttpRequest) => void

  function encodeForm(names: string[], values: unknown[]): string {
    let out = ''
    for (let i = 0; i < names.length; i++) {
      const value = values[i]
      out += `${i === 0 ? '' : '&'}${encodeURIComponent(names[i]!)}=${encodeURIComponent(value === undefined || value === null ? '' : String(value))}`
    }
    return out
  }

  function planFor(client: Client, route: Route, args: unknown[]): Plan {
    let url: string
    let next = 0
    if (route.to === 'service') url = client.serviceUri
    else if (route.to === 'uri') url = String(args[next++])
    else {
      const info = client.info
      if (info === undefined || typeof info[route.to] !== 'string') {
        throw new TypeError(`CloudSyncClient: the service info has no ${route.to}; the client could not load ${client.serviceUri}`)
      }
      url = info[route.to]
    }
    const accept = route.type === undefined ? '*/*' : `${VENDOR}${route.type}+json`
    const plan: Plan = { method: route.method, url, accept }
    if (route.body !== undefined) {
      plan.contentType = `${VENDOR}${route.body}+json`
      plan.body = JSON.stringify(args[next])
    } else if (route.form !== undefined) {
      // Credentials travel in the body (#29/#30, D3), never raw in a URL (D36).
      const query = encodeForm(route.form, args.slice(next))
      plan.contentType = FORM
      plan.body = query
      plan.fallback = { method: 'GET', url: `${url}${url.indexOf('?') === -1 ? '?' : '&'}${query}`, accept }
    }
    return plan
  }

  /** Send one planned request; exactly one of `done` / `fail` is called. */
  function execute(plan: Plan, async: boolean, done: Done, fail: CloudSyncErrorCallback): void {
    const xhr = new XMLHttpRequest()
    let interrupted: 'timeout' | 'abort' | undefined
    const finish = (): void => {
      const status = xhr.status
      if (status === 405 && plan.fallback !== undefined) {
        execute(plan.fallback, async, done, fail)
        return
      }
      if (status < 200 || status > 299) {
        fail(xhr, plan.method, plan.url, interrupted ?? 'error', xhr.statusText || '')
        return
      }
      if (status === 204) {
        done(undefined, 'nocontent', xhr)
        return
      }
      let data: unknown
      try {
        data = JSON.parse(xhr.responseText)
      } catch (err) {
        // An HTML page with 200 is usually a login page: the session is gone.
        fail(xhr, plan.method, plan.url, 'parsererror', err instanceof Error ? err.message : String(err))
        return
      }
      done(data, 'success', xhr)
    }
    try {
      xhr.open(plan.method, plan.url, async)
      xhr.setRequestHeader('Accept', plan.accept)
      // jQuery added this implicitly; the server relies on it (spec §6.4, §6.6).
      xhr.setRequestHeader('X-Requested-With', 'XMLHttpRequest')
      if (plan.contentType !== undefined) xhr.setRequestHeader('Content-Type', plan.contentType)
      if (async) {
        xhr.ontimeout = () => { interrupted = 'timeout' }
        xhr.onabort = () => { interrupted = 'abort' }
        xhr.onloadend = finish
      }
      xhr.send(plan.body === undefined ? null : plan.body)
    } catch (err) {
      // A synchronous request throws on network errors.
      fail(xhr, plan.method, plan.url, 'error', err instanceof Error ? err.message : String(err))
      return
    }
    if (!async) finish()
  }

  function isServiceInfo(data: unknown): data is { service: CloudSyncServiceInfo } {
    return typeof data === 'object' && data !== null && typeof (data as { service?: unknown }).service === 'object' &&
      (data as { service: unknown }).service !== null
  }

  /** Run a named operation for a client. */
  function run(client: Client, name: Name, args: unknown[], async: boolean, done: Done, fail: CloudSyncErrorCallback): void {
    const route = ROUTES[name]
    const plan = planFor(client, route, args)
    execute(plan, async, (data, textStatus, xhr) => {
      if (route.type === 'serviceinfo') {
        if (!isServiceInfo(data)) {
          fail(xhr, plan.method, plan.url, 'parsererror', 'The response has no service info')
          return
        }
        client.info = data.service
      }
      done(data, textStatus, xhr)
    }, fail)
  }

  function problemOf(xhr: XMLHttpRequest): CloudSyncRequestError['problem'] {
    const type = xhr.getResponseHeader('Content-Type') || ''
    if (type.indexOf('json') === -1) return undefined
    try {
      const value: unknown = JSON.parse(xhr.responseText)
      return typeof value === 'object' && value !== null ? (value as CloudSyncRequestError['problem']) : undefined
    } catch {
      return undefined
    }
  }

  class RequestError extends Error implements CloudSyncRequestError {
    readonly xhr: XMLHttpRequest
    readonly status: number
    readonly method: string
    readonly url: string
    readonly textStatus: string
    readonly errorThrown: string
    readonly problem: CloudSyncRequestError['problem']

    constructor(xhr: XMLHttpRequest, method: string, url: string, textStatus: string, errorThrown: string) {
      const problem = problemOf(xhr)
      const detail = problem !== undefined && typeof problem.detail === 'string' ? `: ${problem.detail}` : ''
      super(`${method} ${url} failed with ${xhr.status === 0 ? 'no response' : `HTTP ${xhr.status}`}${detail}`)
      this.name = 'CloudSyncRequestError'
      this.xhr = xhr
      this.status = xhr.status
      this.method = method
      this.url = url
      this.textStatus = textStatus
      this.errorThrown = errorThrown
      this.problem = problem
    }
  }

  function makePromises(client: Client): CloudSyncPromiseMethods {
    const promises: Record<string, (...args: unknown[]) => Promise<unknown>> = {}
    for (const name of Object.keys(ROUTES) as Name[]) {
      const n = arity(ROUTES[name])
      promises[name] = (...args: unknown[]) => new Promise((resolve, reject) => {
        run(client, name, args.slice(0, n), true, (data) => resolve(data),
          (xhr, method, url, textStatus, errorThrown) => reject(new RequestError(xhr, method, url, textStatus, errorThrown)))
      })
    }
    return promises as unknown as CloudSyncPromiseMethods
  }

  function defaultNotice(message: string): void {
    if (typeof alert === 'function') alert(message)
    else if (typeof console !== 'undefined') console.error(message)
  }

  class Client {
    readonly serviceUri: string
    info: CloudSyncServiceInfo | undefined
    readonly promises: CloudSyncPromiseMethods

    static onNotice: CloudSyncClientConstructor['onNotice'] = defaultNotice
    static reload: () => void = () => {
      if (typeof location !== 'undefined') location.reload()
    }

    static readonly RequestError = RequestError

    /** Spec §7.2: unavailable → notice + reload; expired session → notice + reload; else name the request. */
    static defaultErrorHandler: CloudSyncErrorCallback = (xhr, method, url, textStatus) => {
      // A request aborted by leaving the page is not worth a notice.
      if (textStatus === 'abort') return
      const status = xhr.status
      const problem = problemOf(xhr)
      const failure: CloudSyncFailure = { status, method, url, detail: problem !== undefined && typeof problem.detail === 'string' ? problem.detail : undefined }
      if (status === 0 || status === 503) {
        Client.onNotice('The CloudSync service is not available right now. The page will reload; if this persists, try again later.', 'unavailable', failure)
        Client.reload()
      } else if (status === 401 || (status >= 200 && status < 300 && textStatus === 'parsererror')) {
        Client.onNotice('Your session has expired. The page will reload so that you can log in again.', 'expired', failure)
        Client.reload()
      } else {
        const reason = failure.detail !== undefined ? ` ${failure.detail}` : ''
        Client.onNotice(`The request failed with HTTP status ${status}${xhr.statusText ? ` (${xhr.statusText})` : ''}: ${method} ${url}.${reason}`, 'error', failure)
      }
    }

    static handleError(err: unknown): void {
      if (!(err instanceof RequestError)) throw err
      Client.defaultErrorHandler(err.xhr, err.method, err.url, err.textStatus, err.errorThrown)
    }

    static create(serviceUri: string): Promise<CloudSyncClient & { info: CloudSyncServiceInfo }> {
      return new Promise((resolve, reject) => {
        if (typeof serviceUri !== 'string' || serviceUri === '') throw new TypeError('CloudSyncClient.create: serviceUri must be the URL of {api}/service')
        const plan: Plan = { method: 'GET', url: serviceUri, accept: `${VENDOR}serviceinfo+json` }
        execute(plan, true, (data, _textStatus, xhr) => {
          if (isServiceInfo(data)) resolve(new Client(serviceUri, data.service) as unknown as CloudSyncClient & { info: CloudSyncServiceInfo })
          else reject(new RequestError(xhr, plan.method, plan.url, 'parsererror', 'The response has no service info'))
        }, (xhr, method, url, textStatus, errorThrown) => reject(new RequestError(xhr, method, url, textStatus, errorThrown)))
      })
    }

    constructor(serviceUri: string, info?: CloudSyncServiceInfo) {
      if (typeof serviceUri !== 'string' || serviceUri === '') throw new TypeError('CloudSyncClient: serviceUri must be the URL of {api}/service')
      this.serviceUri = serviceUri
      this.info = info
      this.promises = makePromises(this)
      if (info === undefined) {
        // Spec §7.1: the constructor loads the service info synchronously.
        run(this, 'getServiceInfo', [], false, () => undefined,
          (xhr, method, url, textStatus, errorThrown) => Client.defaultErrorHandler(xhr, method, url, textStatus, errorThrown))
      }
    }
  }

  for (const name of Object.keys(ROUTES) as Name[]) {
    const n = arity(ROUTES[name])
    Object.defineProperty(Client.prototype, name, {
      configurable: true,
      writable: true,
      value: function (this: Client, ...args: unknown[]): void {
        const success = args[n]
        const asyncArg = args[n + 1]
        const error = args[n + 2]
        run(this, name, args.slice(0, n), asyncArg === undefined || asyncArg === null ? true : Boolean(asyncArg),
          (data, textStatus, xhr) => {
            if (typeof success === 'function') (success as CloudSyncSuccess<unknown>)(data, textStatus, xhr)
          },
          typeof error === 'function'
            ? (error as CloudSyncErrorCallback)
            : (xhr, method, url, textStatus, errorThrown) => Client.defaultErrorHandler(xhr, method, url, textStatus, errorThrown))
      }
    })
  }

  return Client as unknown as CloudSyncClientConstructor
})()
