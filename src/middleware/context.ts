/**
 * The per-request context shared by the cloudsync-kit pieces.
 *
 * Every piece records its decisions here instead of on ad-hoc request
 * properties, so a later step has one typed place to look. The context lives
 * under a module-private symbol, as a non-enumerable property of the request:
 * invisible to `Object.keys`, spreads, JSON and `util.inspect`, and a piece
 * used alone pays nothing for the others. (A WeakMap keyed by the request
 * would be tidier, but V8's minor GC cannot free WeakMap entries: every
 * request's context would survive into the old generation, which tripled the
 * garbage-collection cost per request under load.)
 *
 * This module holds types and one accessor only; importing it loads no piece.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'

/** Connect-style continuation. Pass an error to skip to the error handler. */
export type Next = (err?: unknown) => void

/** A Connect / Express compatible middleware function. */
export type Middleware = (req: IncomingMessage, res: ServerResponse, next: Next) => void

/** A Connect / Express compatible error-handling middleware function. */
export type ErrorMiddleware = (err: unknown, req: IncomingMessage, res: ServerResponse, next: Next) => void

/** What the format-suffix piece recorded for a request with a `.json`/`.xml` suffix. */
export interface FormatChoice {
  /** The suffix as it appeared on the last path segment, e.g. `.json`. */
  suffix: string
  /** The media type the suffix stands for, e.g. `application/json`. */
  type: string
}

/** The authenticated principal, as returned by the application's `lookup`. */
export interface AuthUser {
  id: string | number
  name: string
  admin?: boolean
  enabled?: boolean
}

/** Session data persisted by a {@link SessionStore}. */
export interface SessionRecord {
  /** Authenticated user id, when logged in. */
  userId?: string | number
  /** Epoch ms when the session was created (absolute timeout). */
  createdAt: number
  /** Epoch ms of the last request that used it (idle timeout). */
  lastSeenAt: number
  /** Free-form values (e.g. the URL to return to after login). */
  data: Record<string, unknown>
}

/**
 * Where sessions live. Implementations must be safe to call concurrently and
 * must treat ids as opaque strings. `ttlMs` is a hint for expiry housekeeping.
 */
export interface SessionStore {
  get(id: string): Promise<SessionRecord | undefined>
  set(id: string, record: SessionRecord, ttlMs: number): Promise<void>
  destroy(id: string): Promise<void>
  /** Drop every session of one user (password change, deletion). Optional. */
  destroyByUser?(userId: string | number): Promise<void>
}

/** The live session of a request, as exposed by the session piece. */
export interface SessionHandle {
  readonly id: string
  readonly record: SessionRecord
  /** Issue a fresh id for the same data (call at login: prevents fixation). */
  regenerate(): Promise<void>
  /** Delete server-side and clear the cookie (logout). */
  destroy(): Promise<void>
  /** Persist changes made to `record`. */
  save(): Promise<void>
}

/** Per-request decisions, filled in pipeline order. */
export interface RequestContext {
  /** The path prefix the handling app is mounted at (`''` at the root). Set by composers such as `cloudsync()`. */
  mountPath?: string
  /** format-suffix: the recorded `.json` / `.xml` suffix, if any. */
  format?: FormatChoice
  /** method-override: the method the client actually sent, when overridden. */
  originalMethod?: string
  /** session: the request's session (created lazily on login). */
  session?: SessionHandle
  /** authenticate: the principal. */
  user?: AuthUser
  /** authenticate: how the principal proved itself. */
  authScheme?: 'basic' | 'session'
  /** negotiate: the chosen response media type. */
  responseType?: string
  /** body: the parsed request body. */
  body?: unknown
  /** body: the media type the body was parsed as. */
  bodyType?: string
}

const CONTEXT = Symbol('cloudsync-kit.context')
// One descriptor reused for every request: defining the property allocates nothing else.
const descriptor: PropertyDescriptor & { value: RequestContext | undefined } = { value: undefined, writable: false, enumerable: false, configurable: true }
// Only for request objects that cannot take a property (frozen or sealed stand-ins).
const fallback = new WeakMap<IncomingMessage, RequestContext>()

/**
 * The context of `req`, created empty on first use.
 *
 * @example
 * import { contextOf } from 'cloudsync-kit/context'
 *
 * app.use((req, res) => res.end(contextOf(req).user?.name ?? 'anonymous'))
 */
export function contextOf(req: IncomingMessage): RequestContext {
  const ctx = (req as unknown as Record<symbol, RequestContext | undefined>)[CONTEXT]
  return ctx !== undefined ? ctx : createContext(req)
}

function createContext(req: IncomingMessage): RequestContext {
  if (!Object.isExtensible(req)) {
    let ctx = fallback.get(req)
    if (ctx === undefined) fallback.set(req, (ctx = {}))
    return ctx
  }
  const ctx: RequestContext = {}
  descriptor.value = ctx
  Object.defineProperty(req, CONTEXT, descriptor)
  descriptor.value = undefined
  return ctx
}

/**
 * The path prefix where the current app is mounted: the recorded
 * `mountPath`, else Express's `req.baseUrl`, else the part of `originalUrl`
 * that Connect stripped from `url`.
 */
export function mountPathOf(req: IncomingMessage): string {
  const recorded = contextOf(req).mountPath
  if (recorded !== undefined) return recorded
  const r = req as ConnectRequest & { baseUrl?: unknown }
  if (typeof r.baseUrl === 'string') return r.baseUrl
  const original = pathOnly(r.originalUrl ?? req.url ?? '/')
  const current = pathOnly(req.url ?? '/')
  if (current === '/' ) return original.endsWith('/') ? original.slice(0, -1) : original
  return original.endsWith(current) ? original.slice(0, original.length - current.length) : ''
}

/** The path of a request URL, without its query string. */
export function pathOnly(url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

/** Request properties that Express and Connect set and the pieces honour. */
export interface ConnectRequest extends IncomingMessage {
  originalUrl?: string
  originalMethod?: string
  body?: unknown
}

export type { IncomingMessage, ServerResponse }
