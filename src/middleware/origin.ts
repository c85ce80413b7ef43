/**
 * origin — where a request comes from, judged from its headers (spec §6.3,
 * §6.6). A small helper shared by the `csrf` and `login` pieces; it loads no
 * piece and keeps no state.
 *
 * The rule: a cross-site `Origin` (including the opaque `null`) or a
 * `Sec-Fetch-Site` of `cross-site` / `same-site` marks a request cross-site;
 * a same-origin `Origin`, `Referer` (consulted only when `Origin` is absent)
 * or `Sec-Fetch-Site: same-origin` marks it same-origin; a request with none
 * of these headers (a script, an old browser) is `unknown`.
 */
import type { IncomingMessage } from 'node:http'
import type { TLSSocket } from 'node:tls'

/** The verdict of {@link siteOf}. */
export type SiteVerdict = 'same-origin' | 'cross-site' | 'unknown'

/** Options shared by the origin checks. */
export interface OriginOptions {
  /** Believe `X-Forwarded-Proto` / `X-Forwarded-Host` from a reverse proxy. Default `false`. */
  trustProxy?: boolean
  /** Extra origins treated as this site, e.g. `https://ui.example.org`. Default none. */
  allowedOrigins?: Iterable<string>
}

/**
 * Whether the request arrived over HTTPS: a TLS socket, or (only with
 * `trustProxy`) a first `X-Forwarded-Proto` value of `https`.
 *
 * @example
 * if (isHttps(req, true)) res.setHeader('Strict-Transport-Security', 'max-age=31536000')
 */
export function isHttps(req: IncomingMessage, trustProxy = false): boolean {
  if ((req.socket as TLSSocket | undefined)?.encrypted === true) return true
  if (!trustProxy) return false
  const proto = firstValue(req.headers['x-forwarded-proto'])
  return proto !== undefined && proto.toLowerCase() === 'https'
}

/**
 * The origin (`scheme://host[:port]`, lower case, default port omitted) the
 * client addressed, from the `Host` header (or, with `trustProxy`, from
 * `X-Forwarded-Host` / `X-Forwarded-Proto`). `''` when the request names no host.
 *
 * @example
 * requestOrigin(req, false) // 'http://localhost:3000'
 */
export function requestOrigin(req: IncomingMessage, trustProxy = false): string {
  const https = isHttps(req, trustProxy)
  let host = trustProxy ? firstValue(req.headers['x-forwarded-host']) : undefined
  if (host === undefined || host === '') host = req.headers.host
  if (host === undefined) return ''
  host = host.trim().toLowerCase()
  if (host === '') return ''
  // Browsers never put a default port in Origin; strip it here so the two compare equal.
  if (https ? host.endsWith(':443') : host.endsWith(':80')) host = host.slice(0, host.lastIndexOf(':'))
  return (https ? 'https://' : 'http://') + host
}

/**
 * Normalize a list of origins for {@link siteOf}; throws a `TypeError`
 * naming `optionName` for anything that is not an http(s) origin.
 *
 * @example
 * const allowed = normalizeOrigins(['https://UI.example.org:443'], 'csrf: option "allowedOrigins"')
 * allowed.has('https://ui.example.org') // true
 */
export function normalizeOrigins(origins: Iterable<string> | undefined, optionName: string): ReadonlySet<string> {
  const set = new Set<string>()
  if (origins === undefined) return set
  if (typeof origins === 'string' || typeof (origins as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== 'function') {
    throw new TypeError(`${optionName} must be an array of origins such as "https://app.example.org"`)
  }
  for (const origin of origins) {
    let url: URL | undefined
    try {
      url = typeof origin === 'string' ? new URL(origin) : undefined
    } catch {
      url = undefined
    }
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || (url.pathname !== '/' && url.pathname !== '')) {
      throw new TypeError(`${optionName} must contain origins such as "https://app.example.org"; got ${JSON.stringify(origin)}`)
    }
    set.add(url.origin)
  }
  return set
}

const EMPTY: ReadonlySet<string> = new Set()

/**
 * Judge where a request comes from (see the module comment for the rule).
 * Origins in `allowed` count as this site even when `Sec-Fetch-Site` says
 * otherwise, because a browser reports a trusted sibling origin as `same-site`
 * or `cross-site`.
 *
 * @example
 * siteOf(req, false) // 'cross-site' for Origin: https://evil.example
 */
export function siteOf(req: IncomingMessage, trustProxy = false, allowed: ReadonlySet<string> = EMPTY): SiteVerdict {
  const headers = req.headers
  const origin = headers.origin
  if (origin !== undefined && allowed.size > 0 && allowed.has(origin.toLowerCase())) return 'same-origin'
  const fetchSite = headers['sec-fetch-site']
  if (fetchSite === 'cross-site' || fetchSite === 'same-site') return 'cross-site'
  if (origin !== undefined) {
    // `null` (sandboxed frames, some redirects) never equals a real origin.
    return origin.toLowerCase() === requestOrigin(req, trustProxy) ? 'same-origin' : 'cross-site'
  }
  const referer = headers.referer
  if (referer !== undefined) {
    const from = refererOrigin(referer)
    if (from === undefined) return 'cross-site'
    return from === requestOrigin(req, trustProxy) || allowed.has(from) ? 'same-origin' : 'cross-site'
  }
  return fetchSite === 'same-origin' ? 'same-origin' : 'unknown'
}

/**
 * Whether the request demonstrably comes from another site (spec §6.3):
 * a cross-site `Origin` or `Referer`, or `Sec-Fetch-Site: cross-site` /
 * `same-site`. A request without any of these headers is not cross-site.
 *
 * @example
 * if (req.method === 'POST' && isCrossSiteRequest(req, { trustProxy: true })) refuse()
 */
export function isCrossSiteRequest(req: IncomingMessage, options: OriginOptions = {}): boolean {
  const allowed = options.allowedOrigins === undefined ? EMPTY : normalizeOrigins(options.allowedOrigins, 'isCrossSiteRequest: option "allowedOrigins"')
  return siteOf(req, options.trustProxy === true, allowed) === 'cross-site'
}

function refererOrigin(referer: string): string | undefined {
  try {
    const url = new URL(referer)
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : undefined
  } catch {
    return undefined
  }
}

function firstValue(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined
  const text = Array.isArray(value) ? value[0] : value
  if (text === undefined) return undefined
  const comma = text.indexOf(',')
  return (comma === -1 ? text : text.slice(0, comma)).trim()
}
