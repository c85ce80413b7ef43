/** Options of `cloudsync()` and their validation (TypeError naming the option). */
import path from 'node:path'
import type { Backend } from '../backend/types.js'

export interface TaskManagerTuning {
  intervalMs?: number
  durable?: boolean
  workerThreads?: boolean
  copyThreads?: number
}

export interface CloudSyncOptions {
  /** Where the embedded SQLite database, task logs and default store root live. Default `./data`. Ignored when `backend` is given (except for the default store root). */
  dataDir?: string
  /** A custom backend; default: the embedded SQLite backend in `dataDir`. */
  backend?: Backend
  /** The API's path below the mount. Default `/api/rest`. */
  apiPath?: string
  /** Public base URL (`https://example.org/cs`) used for links instead of the request's origin and mount. */
  publicUrl?: string
  /** Trust `X-Forwarded-Proto` / `X-Forwarded-Host` (only behind a proxy that sets them). Default false. */
  trustProxy?: boolean
  /** Absolute directories that filesystem stores must live in. Default `[<dataDir>/stores]`. */
  storeRoots?: string[]
  /** Host names the DuraCloud look-ups and the Fedora and DuraCloud stores may contact; undefined = any host. */
  outboundHosts?: string[]
  /**
   * Run the task manager in this process. Default true. An object tunes it:
   * `intervalMs` (how often tasks are examined, default 5000), `durable`
   * (fsync every copied file, for power-loss safety; default false),
   * `workerThreads` (copy between filesystem stores off the request thread;
   * default true) and `copyThreads` (threads sharing one copy of a pattern
   * set; default one per core, at most two).
   */
  taskManager?: boolean | TaskManagerTuning
  /** Session cookie timeouts. */
  session?: { idleTimeoutMs?: number; absoluteTimeoutMs?: number; cookieName?: string }
  /** The HTTP Basic verification cache; `false` hashes every request. Default `{ max: 1000, ttlMs: 60000 }`. */
  basicAuthCache?: false | { max?: number; ttlMs?: number }
  /** Failed-login throttling per account. Default 10 failures per 5 minutes. */
  loginThrottle?: { maxFailures?: number; windowMs?: number }
  /** Request body limit in bytes. Default 256 KiB. */
  bodyLimit?: number
  /** Where internal errors and task-manager messages go. Default `console.error`. */
  log?: (message: string, err?: unknown) => void
}

export interface ResolvedOptions {
  dataDir: string
  backend?: Backend
  apiPath: string
  publicUrl?: string
  trustProxy: boolean
  storeRoots: string[]
  outboundHosts?: string[]
  taskManager: false | TaskManagerTuning
  session: { idleTimeoutMs?: number; absoluteTimeoutMs?: number; cookieName?: string }
  basicAuthCache: false | { max?: number; ttlMs?: number }
  loginThrottle: { maxFailures?: number; windowMs?: number }
  bodyLimit: number
  log: (message: string, err?: unknown) => void
}

function fail(option: string, expected: string): never {
  throw new TypeError(`cloudsync: option "${option}" must be ${expected}`)
}

export function resolveOptions(options: CloudSyncOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) fail('options', 'an object')
  const dataDir = path.resolve(options.dataDir ?? 'data')
  const apiPath = options.apiPath ?? '/api/rest'
  if (!/^(\/[A-Za-z0-9._~-]+)+$/.test(apiPath)) fail('apiPath', 'a path such as "/api/rest" (no trailing slash)')
  let publicUrl: string | undefined
  if (options.publicUrl !== undefined) {
    let url: URL
    try {
      url = new URL(options.publicUrl)
    } catch {
      fail('publicUrl', 'an absolute http(s) URL')
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') fail('publicUrl', 'an absolute http(s) URL')
    publicUrl = `${url.origin}${url.pathname.replace(/\/+$/, '')}`
  }
  const storeRoots = options.storeRoots ?? [path.join(dataDir, 'stores')]
  if (!Array.isArray(storeRoots) || storeRoots.length === 0 || storeRoots.some((r) => typeof r !== 'string' || !path.isAbsolute(r))) {
    fail('storeRoots', 'a non-empty array of absolute paths')
  }
  if (options.outboundHosts !== undefined && (!Array.isArray(options.outboundHosts) || options.outboundHosts.some((h) => typeof h !== 'string'))) {
    fail('outboundHosts', 'an array of host names')
  }
  const bodyLimit = options.bodyLimit ?? 256 * 1024
  if (!Number.isInteger(bodyLimit) || bodyLimit < 1024) fail('bodyLimit', 'an integer of at least 1024 bytes')
  const taskManager = options.taskManager === false ? false : options.taskManager === true || options.taskManager === undefined ? {} : options.taskManager
  const resolved: ResolvedOptions = {
    dataDir,
    apiPath,
    trustProxy: options.trustProxy === true,
    storeRoots: storeRoots.map((r) => path.resolve(r)),
    taskManager,
    session: options.session ?? {},
    basicAuthCache: options.basicAuthCache ?? {},
    loginThrottle: options.loginThrottle ?? {},
    bodyLimit,
    log: options.log ?? ((message, err) => (err === undefined ? console.error(message) : console.error(message, err)))
  }
  if (options.backend !== undefined) resolved.backend = options.backend
  if (publicUrl !== undefined) resolved.publicUrl = publicUrl
  if (options.outboundHosts !== undefined) resolved.outboundHosts = options.outboundHosts
  return resolved
}
