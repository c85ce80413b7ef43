/**
 * session — a cookie session over a pluggable {@link SessionStore}.
 *
 * Every request gets `contextOf(req).session`: the stored session when the
 * cookie names a live one, otherwise a fresh handle that costs nothing until
 * `save()` or `regenerate()` is called (anonymous requests never create
 * sessions or cookies). Idle and absolute timeouts are enforced on read.
 *
 * Cookie: `HttpOnly; SameSite=Lax; Path=/`, plus `Secure` and the `__Host-`
 * name prefix on HTTPS (spec §6.2). Ids are 256 random bits, base64url; a
 * cookie value of any other shape is ignored before the store is asked.
 */
import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { parse as parseCookie, serialize as serializeCookie } from 'cookie'
import type { SerializeOptions } from 'cookie'
import { contextOf } from './context.js'
import type { Middleware, Next, SessionHandle, SessionRecord, SessionStore } from './context.js'
import { isHttps } from './origin.js'

/** Options of {@link session}. */
export interface SessionOptions {
  /** Where sessions live. Default: a new {@link MemoryStore} (one process only). */
  store?: SessionStore
  /** Cookie name; `__Host-` is prefixed on HTTPS (`__Secure-` when `path` is not `/`). Default `'cloudsync.sid'`. */
  cookieName?: string
  /** End a session after this long without a request, in ms. Default 30 minutes. */
  idleTimeoutMs?: number
  /** End a session this long after login, whatever the activity, in ms. Default 12 hours. */
  absoluteTimeoutMs?: number
  /** `true`: always `Secure`; `false`: never; `'auto'`: on HTTPS requests. Default `'auto'`. */
  secure?: boolean | 'auto'
  /** With `secure: 'auto'`, believe `X-Forwarded-Proto: https` from a reverse proxy. Default `false`. */
  trustProxy?: boolean
  /** Cookie `Path`. Default `'/'`. */
  path?: string
}

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** Sessions kept at most; the least recently used go first. Default `10000`. */
  max?: number
}

const ID_SHAPE = /^[A-Za-z0-9_-]{43}$/
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
// Writes for "still active" are rate-limited: a UI polling every few seconds
// must not cause a store write per request.
const MAX_TOUCH_INTERVAL_MS = 60_000

/**
 * A new session id: 32 random bytes, base64url (43 characters).
 *
 * @example
 * const id = newSessionId() // 'q3J0…' (43 chars)
 */
export function newSessionId(): string {
  return randomBytes(32).toString('base64url')
}

/**
 * Whether `value` has the shape of a session id. Cheap; call before any store lookup.
 *
 * @example
 * isSessionId('not-a-session') // false
 */
export function isSessionId(value: unknown): value is string {
  return typeof value === 'string' && value.length === 43 && ID_SHAPE.test(value)
}

/**
 * An in-process {@link SessionStore}: bounded (`max`), least-recently-used
 * eviction, per-entry expiry. Records are copied in and out, like a real
 * database, so an unsaved change never leaks into the store. Sessions are lost
 * on restart and are not shared between processes; use a database-backed store
 * for more than one instance.
 *
 * @example
 * app.use(session({ store: new MemoryStore({ max: 50_000 }) }))
 */
export class MemoryStore implements SessionStore {
  readonly max: number
  readonly #entries = new Map<string, { record: SessionRecord; expiresAt: number }>()

  constructor(options: MemoryStoreOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new TypeError('MemoryStore: options must be an object')
    const max = options.max ?? 10_000
    if (typeof max !== 'number' || !Number.isSafeInteger(max) || max < 1) {
      throw new TypeError('MemoryStore: option "max" must be a positive integer')
    }
    this.max = max
  }

  /** Number of sessions held (expired ones included until swept). */
  get size(): number {
    return this.#entries.size
  }

  async get(id: string): Promise<SessionRecord | undefined> {
    const entry = this.#entries.get(id)
    if (entry === undefined) return undefined
    this.#entries.delete(id)
    if (entry.expiresAt <= Date.now()) return undefined
    this.#entries.set(id, entry) // most recently used last
    return structuredClone(entry.record)
  }

  async set(id: string, record: SessionRecord, ttlMs: number): Promise<void> {
    const now = Date.now()
    const entry = { record: structuredClone(record), expiresAt: now + (ttlMs > 0 ? ttlMs : 0) }
    this.#entries.delete(id)
    this.#entries.set(id, entry)
    // Sweep a little on every write: expired entries at the old end go first,
    // then the least recently used while over the bound.
    let swept = 0
    for (const [key, old] of this.#entries) {
      if (this.#entries.size > this.max || (old.expiresAt <= now && swept < 4)) {
        this.#entries.delete(key)
        swept++
      } else break
    }
  }

  async destroy(id: string): Promise<void> {
    this.#entries.delete(id)
  }

  async destroyByUser(userId: string | number): Promise<void> {
    for (const [key, entry] of this.#entries) {
      // Ids may come back from a database as strings: "7" and 7 are the same user.
      if (entry.record.userId !== undefined && String(entry.record.userId) === String(userId)) this.#entries.delete(key)
    }
  }
}

/** Everything a handle needs that does not change between requests. */
interface CookieConfig {
  store: SessionStore
  name: string
  set: SerializeOptions
  clear: SerializeOptions
  idleTimeoutMs: number
  absoluteTimeoutMs: number
}

function ttlOf(config: CookieConfig, record: SessionRecord, now: number): number {
  return Math.max(0, Math.min(config.idleTimeoutMs, record.createdAt + config.absoluteTimeoutMs - now))
}

function freshRecord(now: number): SessionRecord {
  return { createdAt: now, lastSeenAt: now, data: {} }
}

class CookieSession implements SessionHandle {
  readonly #config: CookieConfig
  readonly #res: ServerResponse
  #id: string | undefined
  #record: SessionRecord
  /** The store holds `#id`. */
  #stored: boolean

  constructor(config: CookieConfig, res: ServerResponse, id: string | undefined, record: SessionRecord) {
    this.#config = config
    this.#res = res
    this.#id = id
    this.#record = record
    this.#stored = id !== undefined
  }

  /** The session id; drawn lazily so anonymous requests pay no randomness. */
  get id(): string {
    return (this.#id ??= newSessionId())
  }

  get record(): SessionRecord {
    return this.#record
  }

  async save(): Promise<void> {
    const config = this.#config
    const now = Date.now()
    const record = this.#record
    record.lastSeenAt = now
    const isNew = !this.#stored
    const id = this.id
    if (isNew) this.#assertCanSetCookie('save')
    await config.store.set(id, record, ttlOf(config, record, now))
    this.#stored = true
    if (isNew) this.#putCookie(serializeCookie(config.name, id, config.set))
  }

  async regenerate(): Promise<void> {
    const config = this.#config
    this.#assertCanSetCookie('regenerate')
    const old = this.#stored ? this.#id : undefined
    const now = Date.now()
    const record = this.#record
    // A regenerated session is a new login: its absolute lifetime starts now.
    record.createdAt = now
    record.lastSeenAt = now
    const id = newSessionId()
    this.#id = id
    this.#stored = false
    await config.store.set(id, record, ttlOf(config, record, now))
    this.#stored = true
    this.#putCookie(serializeCookie(config.name, id, config.set))
    if (old !== undefined) await config.store.destroy(old)
  }

  async destroy(): Promise<void> {
    const config = this.#config
    const old = this.#stored ? this.#id : undefined
    this.#id = undefined
    this.#stored = false
    this.#record = freshRecord(Date.now())
    if (old !== undefined) await config.store.destroy(old)
    this.#assertCanSetCookie('destroy')
    this.#putCookie(serializeCookie(config.name, '', config.clear))
  }

  #assertCanSetCookie(method: string): void {
    if (this.#res.headersSent) {
      throw new Error(`session.${method}() was called after the response headers were sent; call it before responding so the cookie can be set`)
    }
  }

  /** Add our Set-Cookie line, replacing one set earlier in this response and keeping other cookies. */
  #putCookie(line: string): void {
    const res = this.#res
    const previous = res.getHeader('Set-Cookie')
    if (previous === undefined) {
      res.setHeader('Set-Cookie', line)
      return
    }
    const prefix = this.#config.name + '='
    const lines = (Array.isArray(previous) ? previous : [String(previous)]).filter((l) => !l.startsWith(prefix))
    lines.push(line)
    res.setHeader('Set-Cookie', lines)
  }
}

/**
 * The name the session cookie has on this request: `cookieName`, prefixed
 * with `__Host-` (or `__Secure-` for a path other than `/`) when the cookie is
 * `Secure`.
 *
 * @example
 * sessionCookieName(req, { secure: 'auto' }) // '__Host-cloudsync.sid' on HTTPS
 */
export function sessionCookieName(req: IncomingMessage, options: Pick<SessionOptions, 'cookieName' | 'secure' | 'trustProxy' | 'path'> = {}): string {
  const secure = options.secure ?? 'auto'
  const isSecure = secure === 'auto' ? isHttps(req, options.trustProxy === true) : secure
  return cookieNameFor(options.cookieName ?? 'cloudsync.sid', options.path ?? '/', isSecure)
}

// `__Host-` binds the cookie to this exact host and path `/` (no subdomain or
// plain-HTTP page can plant or overwrite it); `__Secure-` is the most a
// narrower path allows.
function cookieNameFor(base: string, path: string, isSecure: boolean): string {
  return isSecure ? (path === '/' ? '__Host-' : '__Secure-') + base : base
}

/**
 * Create the session middleware. Mount it before `authenticate()` and `login()`.
 *
 * @example
 * import connect from 'connect'
 * import { session, MemoryStore } from 'cloudsync-kit/session'
 *
 * const app = connect()
 * app.use(session({ store: new MemoryStore(), idleTimeoutMs: 15 * 60_000 }))
 * app.use((req, res) => {
 *   const s = contextOf(req).session!
 *   res.end(s.record.userId === undefined ? 'anonymous' : `user ${s.record.userId}`)
 * })
 */
export function session(options: SessionOptions = {}): Middleware {
  if (typeof options !== 'object' || options === null) throw new TypeError('session: options must be an object')
  const store = options.store ?? new MemoryStore()
  if (typeof store !== 'object' || store === null || typeof store.get !== 'function' || typeof store.set !== 'function' || typeof store.destroy !== 'function') {
    throw new TypeError('session: option "store" must implement get, set and destroy')
  }
  const cookieName = options.cookieName ?? 'cloudsync.sid'
  if (typeof cookieName !== 'string' || !TOKEN.test(cookieName) || /^__(host|secure)-/i.test(cookieName)) {
    throw new TypeError('session: option "cookieName" must be a cookie-name token without a __Host-/__Secure- prefix (the prefix is added on HTTPS)')
  }
  const idleTimeoutMs = positiveInteger(options.idleTimeoutMs, 30 * 60_000, 'idleTimeoutMs')
  const absoluteTimeoutMs = positiveInteger(options.absoluteTimeoutMs, 12 * 3_600_000, 'absoluteTimeoutMs')
  const secure = options.secure ?? 'auto'
  if (secure !== true && secure !== false && secure !== 'auto') throw new TypeError('session: option "secure" must be true, false or "auto"')
  if (options.trustProxy !== undefined && typeof options.trustProxy !== 'boolean') throw new TypeError('session: option "trustProxy" must be a boolean')
  const trustProxy = options.trustProxy === true
  const path = options.path ?? '/'
  if (typeof path !== 'string' || !path.startsWith('/') || /[\u0000-\u0020;,\u007f]/.test(path)) {
    throw new TypeError('session: option "path" must be a URL path starting with "/" (no spaces, ";" or ",")')
  }
  const touchIntervalMs = Math.min(MAX_TOUCH_INTERVAL_MS, Math.floor(idleTimeoutMs / 4))

  const makeConfig = (isSecure: boolean): CookieConfig => {
    const base = { httpOnly: true, sameSite: 'lax' as const, path, secure: isSecure }
    return {
      store,
      name: cookieNameFor(cookieName, path, isSecure),
      set: base,
      clear: { ...base, maxAge: 0, expires: new Date(0) },
      idleTimeoutMs,
      absoluteTimeoutMs
    }
  }
  const plain = makeConfig(false)
  const tls = makeConfig(true)
  // Optional synchronous read, e.g. SqliteSessionStore.getSync; not part of the SessionStore contract.
  const syncStore = store as SessionStore & { getSync?: (id: string) => SessionRecord | undefined }
  const getSync = typeof syncStore.getSync === 'function' ? syncStore.getSync.bind(store) : undefined

  return function sessionMiddleware(req: IncomingMessage, res: ServerResponse, next: Next): void {
    const ctx = contextOf(req)
    if (ctx.session !== undefined) {
      next()
      return
    }
    const config = (secure === 'auto' ? isHttps(req, trustProxy) : secure) ? tls : plain
    const id = readSessionCookie(req.headers.cookie, config.name)
    if (id === undefined) {
      ctx.session = new CookieSession(config, res, undefined, freshRecord(Date.now()))
      next()
      return
    }
    const attach = (record: SessionRecord | undefined): void => {
      const now = Date.now()
      if (!isLive(record, now, idleTimeoutMs, absoluteTimeoutMs)) {
        // Expired or corrupt: gone for good. The stale cookie is left alone:
        // clearing it could log out a concurrent request that just logged in.
        if (record !== undefined) store.destroy(id).catch(ignore)
        ctx.session = new CookieSession(config, res, undefined, freshRecord(now))
      } else {
        ctx.session = new CookieSession(config, res, id, record)
        if (now - record.lastSeenAt >= touchIntervalMs) {
          record.lastSeenAt = now
          // Best effort: if this write fails, the next request tries again.
          store.set(id, { ...record }, ttlOf(config, record, now)).catch(ignore)
        }
      }
    }
    if (getSync !== undefined) {
      // A store that can answer at once (the SQLite one) saves a promise per request.
      let record: SessionRecord | undefined
      try {
        record = getSync(id)
        attach(record)
      } catch (err) {
        next(err)
        return
      }
      next()
      return
    }
    store.get(id).then((record) => {
      attach(record)
      next()
    }, next)
  }
}

/** The session id in a Cookie header, if present and well-formed. */
function readSessionCookie(header: string | undefined, name: string): string | undefined {
  // Most requests carry no cookie of ours: skip parsing them.
  if (header === undefined || !header.includes(name)) return undefined
  const value = parseCookie(header)[name]
  return isSessionId(value) ? value : undefined
}

function isLive(record: SessionRecord | undefined, now: number, idleMs: number, absoluteMs: number): record is SessionRecord {
  if (typeof record !== 'object' || record === null) return false
  const { createdAt, lastSeenAt, data } = record
  if (typeof createdAt !== 'number' || typeof lastSeenAt !== 'number' || typeof data !== 'object' || data === null) return false
  return now - lastSeenAt < idleMs && now - createdAt < absoluteMs
}

function ignore(): void {}

function positiveInteger(value: unknown, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new TypeError(`session: option "${name}" must be a positive integer (milliseconds)`)
  }
  return value
}

// Re-exported so a piece used alone gives access to the request context it fills.
export { contextOf }
export type { SessionHandle, SessionRecord, SessionStore }
