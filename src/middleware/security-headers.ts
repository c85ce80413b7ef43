/**
 * security-headers — protective response headers and the caching policy of
 * CloudSync spec §1.4, plus `sendCacheable`, the helper that answers reads
 * with a strong ETag and honours `If-None-Match`.
 *
 * Cache policy: reads are `private, no-cache` (a browser may keep them but
 * must revalidate, so polling stays cheap and never stale); everything else
 * is `no-store`.
 */
import * as nodeCrypto from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Middleware, Next } from './context.js'

export interface SecurityHeadersOptions {
  /** `X-Frame-Options` value, or `false` to omit it. Default `'DENY'`. */
  frameOptions?: 'DENY' | 'SAMEORIGIN' | false
  /** `Referrer-Policy` value, or `false` to omit it. Default `'same-origin'`. */
  referrerPolicy?: string | false
  /**
   * `Content-Security-Policy` value, or `false` to omit it. Default
   * `"frame-ancestors 'none'"` (`"frame-ancestors 'self'"` when
   * `frameOptions` is `'SAMEORIGIN'`).
   */
  contentSecurityPolicy?: string | false
  /** Set `Cache-Control` (`private, no-cache` on GET/HEAD, `no-store` otherwise). Default `true`. */
  cacheControl?: boolean
}

const REFERRER_POLICIES = new Set([
  'no-referrer', 'no-referrer-when-downgrade', 'origin', 'origin-when-cross-origin',
  'same-origin', 'strict-origin', 'strict-origin-when-cross-origin', 'unsafe-url'
])
const HEADER_VALUE = /^[\t\x20-\x7e]+$/
const READ_CACHE = 'private, no-cache'
const WRITE_CACHE = 'no-store'
const READ_VARY = ['Accept', 'Authorization', 'Cookie']
const READ_VARY_VALUE = READ_VARY.join(', ')
// One-shot hashing (Node ≥ 20.12) allocates no Hash object per response.
const hashOnce = typeof nodeCrypto.hash === 'function' ? nodeCrypto.hash : undefined

/**
 * Create the security-headers middleware. Header values are computed once,
 * here; each request costs a few `setHeader` calls.
 *
 * @example
 * import { securityHeaders } from 'cloudsync-kit/security-headers'
 *
 * app.use(securityHeaders())                              // defaults
 * app.use(securityHeaders({ frameOptions: 'SAMEORIGIN' })) // allow same-origin framing
 */
export function securityHeaders(options: SecurityHeadersOptions = {}): Middleware {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('securityHeaders: options must be an object')
  }
  const frameOptions = options.frameOptions ?? 'DENY'
  if (frameOptions !== 'DENY' && frameOptions !== 'SAMEORIGIN' && frameOptions !== false) {
    throw new TypeError('securityHeaders: option "frameOptions" must be "DENY", "SAMEORIGIN" or false')
  }
  const referrerPolicy = options.referrerPolicy ?? 'same-origin'
  if (referrerPolicy !== false && !validReferrerPolicy(referrerPolicy)) {
    throw new TypeError('securityHeaders: option "referrerPolicy" must be a Referrer-Policy token list (e.g. "same-origin") or false')
  }
  const csp = options.contentSecurityPolicy ?? (frameOptions === 'SAMEORIGIN' ? "frame-ancestors 'self'" : "frame-ancestors 'none'")
  if (csp !== false && (typeof csp !== 'string' || !HEADER_VALUE.test(csp))) {
    throw new TypeError('securityHeaders: option "contentSecurityPolicy" must be a non-empty header value or false')
  }
  const cacheControl = options.cacheControl ?? true
  if (typeof cacheControl !== 'boolean') {
    throw new TypeError('securityHeaders: option "cacheControl" must be a boolean')
  }

  // Precomputed [name, value] pairs: the request path only loops and sets.
  const fixed: Array<[string, string]> = [['X-Content-Type-Options', 'nosniff']]
  if (frameOptions !== false) fixed.push(['X-Frame-Options', frameOptions])
  if (referrerPolicy !== false) fixed.push(['Referrer-Policy', referrerPolicy])
  if (csp !== false) fixed.push(['Content-Security-Policy', csp])

  return function securityHeadersMiddleware(req: IncomingMessage, res: ServerResponse, next: Next): void {
    for (let i = 0; i < fixed.length; i++) res.setHeader(fixed[i]![0], fixed[i]![1])
    if (cacheControl) res.setHeader('Cache-Control', isRead(req.method) ? READ_CACHE : WRITE_CACHE)
    next()
  }
}

/**
 * Send a read response the cacheable way (spec §1.4): strong `ETag` (hash
 * of type and body), `Cache-Control: private, no-cache`, `Vary: Accept,
 * Authorization, Cookie` (merged into any existing `Vary`), `Content-Type`
 * and `Content-Length`. A GET/HEAD whose `If-None-Match` matches the ETag
 * (`*`, a list, weak `W/` tags compared weakly as RFC 9110 requires) gets
 * `304` without body; HEAD gets the headers only. For other methods the
 * response is sent as given with `Cache-Control: no-store` and no
 * conditional evaluation.
 *
 * `etag` may be passed when the caller already has it for these exact bytes
 * (see {@link entityTag}), e.g. from a cache of serialized responses.
 *
 * @example
 * import { sendCacheable } from 'cloudsync-kit/security-headers'
 *
 * sendCacheable(req, res, JSON.stringify({ task: { name: 'nightly' } }), 'application/json')
 */
export function sendCacheable(req: IncomingMessage, res: ServerResponse, body: string | Buffer, contentType: string, status = 200, etag?: string): void {
  const read = isRead(req.method)
  // Measured first: it also flattens a string built by concatenation, once,
  // before the hash and the socket read it.
  const length = typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.length
  etag ??= entityTag(contentType, body)
  res.setHeader('ETag', etag)
  res.setHeader('Cache-Control', read ? READ_CACHE : WRITE_CACHE)
  mergeVary(res, READ_VARY)

  if (read && status === 200 && ifNoneMatchMatches(req.headers['if-none-match'], etag)) {
    res.removeHeader('Content-Type')
    res.removeHeader('Content-Length')
    res.statusCode = 304
    res.end()
    return
  }
  res.statusCode = status
  res.setHeader('Content-Type', contentType)
  // A string body is handed to Node as is: it goes out in one write with the headers.
  res.setHeader('Content-Length', length)
  res.end(req.method === 'HEAD' ? undefined : body)
}

function isRead(method: string | undefined): boolean {
  return method === 'GET' || method === 'HEAD'
}

/**
 * The strong ETag {@link sendCacheable} gives a body of a content type (a
 * hash of both), quotes included.
 *
 * @example
 * entityTag('application/json', '{"users":[]}') // '"…27 base64url characters…"'
 */
export function entityTag(contentType: string, body: string | Buffer): string {
  // The type is part of the identity: the same bytes as JSON and as vendor JSON are different representations.
  if (hashOnce !== undefined && typeof body === 'string') return `"${hashOnce('sha1', contentType + '\n' + body, 'base64url')}"`
  return `"${nodeCrypto.createHash('sha1').update(contentType).update('\n').update(body).digest('base64url')}"`
}

/**
 * Whether an `If-None-Match` value matches `etag` under weak comparison
 * (RFC 9110 §13.1.2): `*`, or any listed tag whose opaque part equals ours,
 * `W/` or not. Malformed members end the scan without a match.
 *
 * @example
 * ifNoneMatchMatches('W/"abc", "def"', '"abc"') // true
 * ifNoneMatchMatches('"xyz"', '"abc"')          // false
 */
export function ifNoneMatchMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  const n = header.length
  let i = 0
  while (i < n) {
    const c = header.charCodeAt(i)
    if (c === 0x20 || c === 0x09 || c === 0x2c /* , */) {
      i++
      continue
    }
    if (c === 0x2a /* * */) return true
    if (c === 0x57 /* W */ && header.charCodeAt(i + 1) === 0x2f /* / */) i += 2
    if (header.charCodeAt(i) !== 0x22 /* " */) return false
    const close = header.indexOf('"', i + 1)
    if (close === -1) return false
    if (close - i + 1 === etag.length && header.startsWith(etag, i)) return true
    i = close + 1
  }
  return false
}

function validReferrerPolicy(value: unknown): value is string {
  if (typeof value !== 'string' || value.trim() === '') return false
  return value.split(',').every((token) => REFERRER_POLICIES.has(token.trim().toLowerCase()))
}

/** Add each of `fields` to the response's Vary header unless already there (or `*`). */
function mergeVary(res: ServerResponse, fields: readonly string[]): void {
  const current = res.getHeader('Vary')
  if (current === undefined) {
    res.setHeader('Vary', fields === READ_VARY ? READ_VARY_VALUE : fields.join(', '))
    return
  }
  const text = Array.isArray(current) ? current.join(', ') : String(current)
  const present = new Set<string>()
  for (const part of text.split(',')) {
    const name = part.trim().toLowerCase()
    if (name === '*') return
    if (name !== '') present.add(name)
  }
  let out = text.trim()
  for (const field of fields) {
    if (!present.has(field.toLowerCase())) out = out === '' ? field : `${out}, ${field}`
  }
  res.setHeader('Vary', out)
}
