/**
 * csrf — refuse cross-site state changes that ride on a session cookie
 * (spec §6.6, D17).
 *
 * A request that changes state (any method but GET, HEAD, OPTIONS and TRACE;
 * judged by the method the client SENT, so a POST overridden to DELETE
 * counts) and that was authenticated by the session cookie must prove it
 * comes from this site: `Sec-Fetch-Site: same-origin`, a same-origin
 * `Origin` (or `Referer` when `Origin` is absent), or an `X-Requested-With`
 * header (which a cross-site form cannot send). A cross-site `Origin` or
 * `Sec-Fetch-Site` is refused even with `X-Requested-With`. Requests
 * authenticated with HTTP Basic and anonymous requests are exempt: a forged
 * request cannot carry the credentials.
 *
 * Mount after `authenticate()` (it reads `contextOf(req).authScheme`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { contextOf } from './context.js'
import type { Middleware, Next } from './context.js'
import { HttpError } from './problem.js'
import { normalizeOrigins, siteOf } from './origin.js'

export { requestOrigin, isCrossSiteRequest, siteOf } from './origin.js'
export type { OriginOptions, SiteVerdict } from './origin.js'

/** Options of {@link csrf}. */
export interface CsrfOptions {
  /** Believe `X-Forwarded-Proto` / `X-Forwarded-Host` from a reverse proxy when computing this site's origin. Default `false`. */
  trustProxy?: boolean
  /** Extra origins trusted like this site's own, e.g. `['https://ui.example.org']`. Default none. */
  allowedOrigins?: string[]
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])

/**
 * Create the CSRF middleware.
 *
 * @example
 * import connect from 'connect'
 * import { csrf } from 'cloudsync-kit/csrf'
 *
 * app.use(session())
 * app.use(authenticate({ verify, lookup }))
 * app.use(csrf({ trustProxy: true }))
 */
export function csrf(options: CsrfOptions = {}): Middleware {
  if (typeof options !== 'object' || options === null) throw new TypeError('csrf: options must be an object')
  if (options.trustProxy !== undefined && typeof options.trustProxy !== 'boolean') throw new TypeError('csrf: option "trustProxy" must be a boolean')
  const trustProxy = options.trustProxy === true
  const allowed = normalizeOrigins(options.allowedOrigins, 'csrf: option "allowedOrigins"')
  const refused = new HttpError(403, 'Cross-site request refused: send it from a page of this site, or from a script with an X-Requested-With header.', { code: 'csrf' })

  return function csrfMiddleware(req: IncomingMessage, _res: ServerResponse, next: Next): void {
    const ctx = contextOf(req)
    if (ctx.authScheme !== 'session' || SAFE_METHODS.has(ctx.originalMethod ?? req.method ?? 'GET')) {
      next()
      return
    }
    const site = siteOf(req, trustProxy, allowed)
    if (site === 'same-origin' || (site === 'unknown' && req.headers['x-requested-with'] !== undefined)) {
      next()
      return
    }
    next(refused)
  }
}
