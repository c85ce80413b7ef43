/**
 * authenticate — who is asking (spec §6.1, §6.2, §6.4).
 *
 * Open routes pass untouched. `Authorization: Basic` authenticates the
 * request by itself and takes precedence over the session; otherwise the
 * session's user id is looked up on EVERY request, so a deleted or disabled
 * user loses access at once (D16). Without a principal, a browser navigation
 * is redirected to the login page (remembering where it was going), an AJAX
 * call gets 401 without a challenge (no browser password dialog), and
 * anything else gets 401 with a Basic challenge (D18).
 *
 * Verified Basic credentials are cached (bounded, short TTL) under a keyed
 * SHA-256 of name and password (per-process random key), so scripts do not
 * pay a password hash per request and no password is held in memory.
 */
import * as nodeCrypto from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import basicAuth from 'basic-auth'
import { contextOf, mountPathOf } from './context.js'
import type { AuthUser, ConnectRequest, Middleware, Next, RequestContext } from './context.js'
import { HttpError } from './problem.js'
import { LoginThrottle } from './throttle.js'

export { LoginThrottle } from './throttle.js'
export type { LoginThrottleOptions, ThrottleDecision } from './throttle.js'
// Re-exported so a piece used alone gives access to the request context it fills.
export { contextOf } from './context.js'
export type { AuthUser } from './context.js'

/** Options of {@link authenticate}. */
export interface AuthenticateOptions {
  /** Check a name and password; resolve the user, or `undefined` when they do not match. Hash a dummy for unknown names so both take the same time. */
  verify(name: string, password: string): Promise<AuthUser | undefined>
  /**
   * Load a user by id; `undefined` when the user no longer exists. Called on
   * every authenticated request. May answer synchronously (the user instead
   * of a promise): the request then continues in the same turn of the event loop.
   */
  lookup(id: string | number): Promise<AuthUser | undefined> | AuthUser | undefined
  /** Routes that need no authentication (credentials on them are ignored). Default: none. */
  isOpen?(req: IncomingMessage): boolean
  /** The Basic realm. Default `'CloudSync'`. */
  realm?: string
  /** Login page for browser navigations: a path under the mount, or a function giving the full location. Default `'/login'`. */
  loginPath?: string | ((req: IncomingMessage) => string)
  /** Cache of verified Basic credentials, or `false` for none. Default `{ max: 1000, ttlMs: 60000 }`. */
  cache?: false | { max?: number; ttlMs?: number }
  /** Failed-login counter; share it with `login()`. Default: a private `new LoginThrottle()`. */
  throttle?: LoginThrottle
}

/** The middleware returned by {@link authenticate}. */
export interface AuthenticateMiddleware extends Middleware {
  /** Forget cached Basic verifications: of one user name, or all. Call after a password change. */
  invalidate(name?: string): void
}

// Base64 of a 64-character name and a long passphrase fits easily; anything
// bigger is not a credential and is refused before it is decoded.
const MAX_AUTHORIZATION_LENGTH = 4096
const BASIC_SCHEME = /^\s*basic\s/i
const CONTROL = /[\u0000-\u001f\u007f]/
const TEXT_HTML = /(?:^|,)\s*text\/html\s*(?:$|,|;)/i
const TEXT_HTML_REFUSED = /(?:^|,)\s*text\/html\s*;[^,]*\bq\s*=\s*0(?:\.0*)?\s*(?:$|,|;)/i
// Remembered URLs longer than this are dropped rather than stored or echoed.
const MAX_RETURN_TO_LENGTH = 2048

const DETAIL_REQUIRED = 'Authentication is required: log in, or send HTTP Basic credentials with the request.'
const DETAIL_BAD_CREDENTIALS = 'The user name or password is wrong, or the account is disabled; check the credentials and try again.'
const DETAIL_MALFORMED = 'The Authorization header is not valid HTTP Basic credentials; send "Basic " followed by the base64 of name:password.'

/**
 * Whether a request is a browser navigation (spec §6.4): `Sec-Fetch-Mode:
 * navigate`, or, when that header is absent, a GET/HEAD whose `Accept` lists
 * `text/html` and which has no `X-Requested-With` header.
 *
 * @example
 * if (isBrowserNavigation(req)) redirectToLogin(req, res)
 */
export function isBrowserNavigation(req: IncomingMessage): boolean {
  const headers = req.headers
  const mode = headers['sec-fetch-mode']
  if (mode !== undefined) return mode === 'navigate'
  if (req.method !== 'GET' && req.method !== 'HEAD') return false
  if (headers['x-requested-with'] !== undefined) return false
  const accept = headers.accept
  if (accept === undefined || !TEXT_HTML.test(accept)) return false
  return !TEXT_HTML_REFUSED.test(accept)
}

// One-shot hashing (Node ≥ 20.12) allocates no Hash object per request.
const hashOnce = typeof nodeCrypto.hash === 'function' ? nodeCrypto.hash : undefined

class VerificationCache {
  readonly #max: number
  readonly #ttlMs: number
  readonly #key = nodeCrypto.randomBytes(32)
  readonly #prefix = this.#key.toString('base64')
  readonly #entries = new Map<string, { userId: string | number; name: string; expiresAt: number }>()

  constructor(max: number, ttlMs: number) {
    this.#max = max
    this.#ttlMs = ttlMs
  }

  keyOf(name: string, password: string): string {
    // Names cannot contain ':', so "name:password" is unambiguous. The keys
    // never leave the process, so SHA-256 over a fixed-length secret prefix
    // serves as well as an HMAC here, at a fifth of the cost.
    if (hashOnce !== undefined) return hashOnce('sha256', this.#prefix + name + ':' + password, 'base64')
    return nodeCrypto.createHmac('sha256', this.#key).update(name).update(':').update(password).digest('base64')
  }

  get(key: string): { userId: string | number; name: string } | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= Date.now()) {
      this.#entries.delete(key)
      return undefined
    }
    return entry
  }

  set(key: string, userId: string | number, name: string): void {
    this.#entries.delete(key)
    if (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next()
      if (oldest.done !== true) this.#entries.delete(oldest.value)
    }
    this.#entries.set(key, { userId, name, expiresAt: Date.now() + this.#ttlMs })
  }

  delete(key: string): void {
    this.#entries.delete(key)
  }

  invalidate(name?: string): void {
    if (name === undefined) {
      this.#entries.clear()
      return
    }
    for (const [key, entry] of this.#entries) if (entry.name === name) this.#entries.delete(key)
  }
}

/**
 * Create the authentication middleware. Mount it after `session()` (when
 * browsers log in with the form) and before `csrf()` / `authorize()`.
 *
 * @example
 * import connect from 'connect'
 * import { session } from 'cloudsync-kit/session'
 * import { authenticate, LoginThrottle } from 'cloudsync-kit/authenticate'
 *
 * const throttle = new LoginThrottle()
 * const auth = authenticate({
 *   verify: (name, password) => users.verify(name, password),
 *   lookup: (id) => users.byId(id),
 *   isOpen: (req) => req.url === '/login' || req.url!.startsWith('/css/'),
 *   throttle
 * })
 * app.use(session())
 * app.use(auth)
 * // after a password change:
 * auth.invalidate('alice')
 */
export function authenticate(options: AuthenticateOptions): AuthenticateMiddleware {
  if (typeof options !== 'object' || options === null) throw new TypeError('authenticate: options are required (verify, lookup)')
  const { verify, lookup } = options
  if (typeof verify !== 'function') throw new TypeError('authenticate: option "verify" must be a function (name, password) => Promise<user | undefined>')
  if (typeof lookup !== 'function') throw new TypeError('authenticate: option "lookup" must be a function (id) => Promise<user | undefined>')
  const isOpen = options.isOpen ?? (() => false)
  if (typeof isOpen !== 'function') throw new TypeError('authenticate: option "isOpen" must be a function (req) => boolean')
  const realm = options.realm ?? 'CloudSync'
  if (typeof realm !== 'string' || realm === '' || /["\\\u0000-\u001f\u007f]/.test(realm)) {
    throw new TypeError('authenticate: option "realm" must be a non-empty string without quotes, backslashes or control characters')
  }
  const loginPath = options.loginPath ?? '/login'
  if (typeof loginPath === 'string' ? !loginPath.startsWith('/') : typeof loginPath !== 'function') {
    throw new TypeError('authenticate: option "loginPath" must be a path starting with "/" or a function (req) => string')
  }
  const cache = cacheFrom(options.cache)
  const throttle = options.throttle ?? new LoginThrottle()
  if (!(throttle instanceof LoginThrottle)) throw new TypeError('authenticate: option "throttle" must be a LoginThrottle')

  const challenge = { 'WWW-Authenticate': `Basic realm="${realm}", charset="UTF-8"` }
  // Only the hottest shared errors are prebuilt; HttpError instances carry no per-request state.
  const badCredentials = new HttpError(401, DETAIL_BAD_CREDENTIALS, { code: 'invalid_credentials', headers: challenge })
  const malformed = new HttpError(401, DETAIL_MALFORMED, { code: 'invalid_credentials', headers: challenge })
  const required = new HttpError(401, DETAIL_REQUIRED, { code: 'unauthenticated', headers: challenge })
  const requiredQuiet = new HttpError(401, DETAIL_REQUIRED, { code: 'unauthenticated' })
  // Concurrent first requests with the same credentials share one hash.
  const pending = new Map<string, Promise<AuthUser | undefined>>()

  // Each step returns its outcome (undefined: authenticated; an error; HANDLED)
  // directly when it can, or a promise of it: a cached Basic credential or a
  // session checked against a synchronous `lookup` costs no promise at all.
  function basic(ctx: RequestContext, header: string): unknown {
    const credentials = header.length <= MAX_AUTHORIZATION_LENGTH ? basicAuth.parse(header) : undefined
    if (credentials === undefined || credentials.name === '' || CONTROL.test(credentials.name) || CONTROL.test(credentials.pass)) {
      return malformed
    }
    const { name, pass } = credentials
    const decision = throttle.check(name)
    if (!decision.allowed) return tooManyAttempts(decision.retryAfterSeconds)

    const key = cache?.keyOf(name, pass)
    const hit = key === undefined ? undefined : cache!.get(key)
    if (hit === undefined) return verifyOnce(name, pass, key).then((user) => settleBasic(ctx, name, key, user, false))
    // Still look the user up: disabling or deleting must take effect at once.
    const found = lookup(hit.userId)
    return isPromise(found) ? found.then((user) => afterCacheHit(ctx, name, pass, key!, hit, user)) : afterCacheHit(ctx, name, pass, key!, hit, found)
  }

  function afterCacheHit(ctx: RequestContext, name: string, pass: string, key: string, hit: { name: string }, user: AuthUser | undefined): unknown {
    if (user !== undefined && user.name === hit.name) return settleBasic(ctx, name, key, user, true)
    // Renamed or deleted since the password was checked: check again.
    cache!.delete(key)
    return verifyOnce(name, pass, key).then((again) => settleBasic(ctx, name, key, again, true))
  }

  function settleBasic(ctx: RequestContext, name: string, key: string | undefined, user: AuthUser | undefined, wasCached: boolean): unknown {
    if (user === undefined || user.enabled === false) {
      if (key !== undefined) cache!.delete(key)
      throttle.recordFailure(name)
      return badCredentials
    }
    if (!wasCached) {
      throttle.recordSuccess(name)
      if (key !== undefined) cache!.set(key, user.id, user.name)
    }
    ctx.user = user
    ctx.authScheme = 'basic'
    return undefined
  }

  function verifyOnce(name: string, pass: string, key: string | undefined): Promise<AuthUser | undefined> {
    if (key === undefined) return verify(name, pass)
    let promise = pending.get(key)
    if (promise === undefined) {
      promise = verify(name, pass).finally(() => pending.delete(key))
      pending.set(key, promise)
    }
    return promise
  }

  function fromSession(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, userId: string | number): unknown {
    const found = lookup(userId)
    return isPromise(found) ? found.then((user) => sessionUser(req, res, ctx, user)) : sessionUser(req, res, ctx, found)
  }

  function sessionUser(req: IncomingMessage, res: ServerResponse, ctx: RequestContext, user: AuthUser | undefined): unknown {
    if (user !== undefined && user.enabled !== false) {
      ctx.user = user
      ctx.authScheme = 'session'
      return undefined
    }
    // The account is gone or disabled: the session no longer logs anyone in,
    // even if the account comes back later.
    const session = ctx.session!
    delete session.record.userId
    return session.save().then(() => unauthenticated(req, res, ctx))
  }

  function unauthenticated(req: IncomingMessage, res: ServerResponse, ctx: RequestContext): unknown {
    if (!isBrowserNavigation(req)) return req.headers['x-requested-with'] !== undefined ? requiredQuiet : required
    const target = typeof loginPath === 'string' ? mountPathOf(req) + loginPath : loginPath(req)
    const wanted = (req as ConnectRequest).originalUrl ?? mountPathOf(req) + (req.url ?? '/')
    let location = target
    // Only a page the user asked for is worth returning to. A cross-site or
    // non-GET navigation (a forged form post) must not start a session: its
    // cookie would replace the victim's own and log them out.
    const method = req.method
    const crossSite = req.headers['sec-fetch-site'] === 'cross-site'
    if ((method === 'GET' || method === 'HEAD') && !crossSite && wanted.length <= MAX_RETURN_TO_LENGTH) {
      const session = ctx.session
      if (session !== undefined) {
        session.record.data.returnTo = wanted
        return session.save().then(() => redirect(res, location))
      }
      location += (target.includes('?') ? '&' : '?') + 'returnTo=' + encodeURIComponent(wanted)
    }
    return redirect(res, location)
  }

  const middleware = function authenticateMiddleware(req: IncomingMessage, res: ServerResponse, next: Next): void {
    if (isOpen(req)) {
      next()
      return
    }
    const ctx = contextOf(req)
    if (ctx.user !== undefined) {
      next()
      return
    }
    const header = req.headers.authorization
    let outcome: unknown
    try {
      if (header !== undefined) {
        outcome = BASIC_SCHEME.test(header) ? basic(ctx, header) : malformed
      } else {
        const userId = ctx.session?.record.userId
        outcome = userId !== undefined ? fromSession(req, res, ctx, userId) : unauthenticated(req, res, ctx)
      }
    } catch (err) {
      next(err)
      return
    }
    if (isPromise(outcome)) {
      outcome.then((result) => {
        if (result !== HANDLED) next(result)
      }, next)
    } else if (outcome !== HANDLED) {
      next(outcome)
    }
  } as AuthenticateMiddleware
  middleware.invalidate = (name?: string): void => {
    if (name !== undefined && typeof name !== 'string') throw new TypeError('authenticate.invalidate: name must be a string or omitted')
    cache?.invalidate(name)
  }
  return middleware
}

const HANDLED = Symbol('handled')

function isPromise(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function'
}

function redirect(res: ServerResponse, location: string): typeof HANDLED {
  res.statusCode = 302
  res.setHeader('Location', location)
  res.setHeader('Cache-Control', 'no-store')
  res.setHeader('Content-Length', 0)
  res.end()
  return HANDLED
}

function tooManyAttempts(retryAfterSeconds: number): HttpError {
  return new HttpError(429, `Too many failed login attempts for this account; wait ${retryAfterSeconds} seconds and try again.`, {
    code: 'too_many_attempts',
    headers: { 'Retry-After': String(retryAfterSeconds) }
  })
}

function cacheFrom(option: AuthenticateOptions['cache']): VerificationCache | undefined {
  if (option === false) return undefined
  if (option !== undefined && (typeof option !== 'object' || option === null)) {
    throw new TypeError('authenticate: option "cache" must be false or { max, ttlMs }')
  }
  const max = option?.max ?? 1000
  const ttlMs = option?.ttlMs ?? 60_000
  if (typeof max !== 'number' || !Number.isSafeInteger(max) || max < 1) throw new TypeError('authenticate: option "cache.max" must be a positive integer')
  if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs < 1) throw new TypeError('authenticate: option "cache.ttlMs" must be a positive integer (milliseconds)')
  return new VerificationCache(max, ttlMs)
}
