/**
 * negotiate — choose the response media type (CloudSync spec §2.3).
 *
 * A recorded `.json` / `.xml` suffix wins over `Accept`; otherwise standard
 * proactive negotiation by `negotiator` over the types the resource produces.
 * Accept parameters other than `q` are dropped first, because negotiator
 * would otherwise refuse `application/json;charset=utf-8` for a produced
 * `application/json`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import Negotiator from 'negotiator'
import { contextOf } from './context.js'
import type { Middleware, Next } from './context.js'
import { HttpError } from './problem.js'

export { contextOf } from './context.js'

/** The types a resource can produce, fixed or computed per request. */
export type Produces = readonly string[] | ((req: IncomingMessage) => readonly string[])

export interface NegotiateOptions {
  /** Media types the resource can send, most preferred first. */
  produces: Produces
}

const Q_VALUE = /^[0-9.]{1,8}$/
const MEDIA_TYPE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+\s*(;.*)?$/

// Results per distinct Accept header: clients send a handful of different
// values, so a small bounded map turns negotiation into one lookup.
const CACHE_LIMIT = 256
const RESULTS_PER_ACCEPT = 16
const MAX_CACHED_ACCEPT = 1024
interface AcceptEntry {
  /** The header with parameters other than q removed, as handed to negotiator. */
  readonly sanitized: string
  /** Chosen type (or null: none acceptable) per produces list. */
  readonly results: Map<string, string | null>
}
const acceptCache = new Map<string, AcceptEntry>()

/**
 * The media type to answer `req` with, chosen from `produces`, or
 * `undefined` when none is acceptable (answer 406).
 *
 * A recorded format suffix (format-suffix piece) replaces `Accept`: its type
 * is returned if `produces` contains it (parameters and case ignored).
 * Otherwise a missing, empty or `*\/*` Accept picks the first produced type;
 * higher q wins, then the more specific range, then the order of ranges in
 * Accept, then the order of `produces`. Never throws on malformed Accept.
 * The returned string is the `produces` entry itself.
 *
 * @example
 * import { chooseMediaType } from 'cloudsync-kit/negotiate'
 *
 * // Accept: application/xml, application/json
 * chooseMediaType(req, ['application/json', 'application/xml']) // 'application/xml'
 */
export function chooseMediaType(req: IncomingMessage, produces: readonly string[]): string | undefined {
  if (produces.length === 0) return undefined
  const format = contextOf(req).format
  if (format !== undefined) return findType(produces, format.type)

  const accept = req.headers.accept
  if (accept === undefined || isBlank(accept)) return produces[0]

  const key = produces.length === 1 ? produces[0]! : produces.join('\n')
  let entry = accept.length <= MAX_CACHED_ACCEPT ? acceptCache.get(accept) : undefined
  if (entry !== undefined) {
    const hit = entry.results.get(key)
    if (hit !== undefined) return hit ?? undefined
  } else {
    entry = { sanitized: sanitizeAccept(accept), results: new Map() }
    if (accept.length <= MAX_CACHED_ACCEPT) {
      if (acceptCache.size >= CACHE_LIMIT) acceptCache.delete(acceptCache.keys().next().value!)
      acceptCache.set(accept, entry)
    }
  }
  const chosen = negotiateType(entry.sanitized, produces)
  if (entry.results.size >= RESULTS_PER_ACCEPT) entry.results.delete(entry.results.keys().next().value!)
  entry.results.set(key, chosen ?? null)
  return chosen
}

/**
 * Create the negotiation middleware: sets `contextOf(req).responseType`, or
 * fails with a 406 problem (code `not_acceptable`) naming the types the
 * resource can produce. An empty `produces` list (a response without body,
 * such as a 204 to DELETE) skips negotiation: such requests are never 406.
 *
 * @example
 * import { negotiate, contextOf } from 'cloudsync-kit/negotiate'
 *
 * app.get('/tasks', negotiate({ produces: ['application/json', 'application/xml'] }), (req, res) => {
 *   res.setHeader('Content-Type', contextOf(req).responseType!)
 *   // … render in that type
 * })
 */
export function negotiate(options: NegotiateOptions): Middleware {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('negotiate: options must be an object with "produces"')
  }
  const produces = options.produces
  if (typeof produces !== 'function') checkProduces(produces)

  return function negotiateMiddleware(req: IncomingMessage, _res: ServerResponse, next: Next): void {
    let list: readonly string[]
    try {
      list = typeof produces === 'function' ? produces(req) : produces
    } catch (err) {
      return next(err)
    }
    if (!Array.isArray(list) || list.length === 0) return next()
    const type = chooseMediaType(req, list)
    if (type === undefined) return next(notAcceptable(req, list))
    contextOf(req).responseType = type
    next()
  }
}

function notAcceptable(req: IncomingMessage, produces: readonly string[]): HttpError {
  const format = contextOf(req).format
  const list = produces.join(', ')
  const detail = format !== undefined
    ? `The ${format.suffix} suffix asks for ${format.type}, which this resource cannot produce; remove the suffix and accept one of: ${list}.`
    : `This resource can be represented only as ${list}; send an Accept header that allows one of them.`
  return new HttpError(406, detail, { code: 'not_acceptable' })
}

function checkProduces(produces: unknown): void {
  if (!Array.isArray(produces) || produces.length === 0) {
    throw new TypeError('negotiate: option "produces" must be a non-empty array of media types or a function')
  }
  for (const type of produces) {
    if (typeof type !== 'string' || !MEDIA_TYPE.test(type)) {
      throw new TypeError(`negotiate: option "produces" contains an invalid media type: ${String(type)}`)
    }
  }
}

function negotiateType(accept: string, produces: readonly string[]): string | undefined {
  try {
    return new Negotiator({ headers: { accept } }).mediaType(produces as string[])
  } catch {
    // negotiator does not throw on odd input today; a future version must not turn that into a 500.
    return undefined
  }
}

/** The entry of `produces` whose type (parameters and case ignored) is `type`. */
function findType(produces: readonly string[], type: string): string | undefined {
  for (const candidate of produces) {
    const semi = candidate.indexOf(';')
    const base = semi === -1 ? candidate : candidate.slice(0, semi).trimEnd()
    if (base.length === type.length && base.toLowerCase() === type.toLowerCase()) return candidate
  }
  return undefined
}

function isBlank(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c !== 0x20 && c !== 0x09) return false
  }
  return true
}

/**
 * Drop every media-type parameter except `q` from an Accept value:
 * `application/json;charset=utf-8;q=0.5` → `application/json;q=0.5`.
 * Quoted parameter values may contain `,` and `;`.
 */
export function sanitizeAccept(accept: string): string {
  if (accept.indexOf(';') === -1) return accept
  const n = accept.length
  let out = ''
  let i = 0
  while (i < n) {
    let j = i
    while (j < n) {
      const c = accept.charCodeAt(j)
      if (c === 0x2c /* , */ || c === 0x3b /* ; */) break
      j++
    }
    let element = accept.slice(i, j).trim()
    let q: string | undefined
    while (j < n && accept.charCodeAt(j) === 0x3b) {
      j++
      const nameStart = j
      while (j < n) {
        const c = accept.charCodeAt(j)
        if (c === 0x3d /* = */ || c === 0x3b || c === 0x2c) break
        j++
      }
      const name = accept.slice(nameStart, j).trim().toLowerCase()
      if (j >= n || accept.charCodeAt(j) !== 0x3d) continue
      j++
      while (j < n && (accept.charCodeAt(j) === 0x20 || accept.charCodeAt(j) === 0x09)) j++
      let value: string
      if (j < n && accept.charCodeAt(j) === 0x22 /* " */) {
        const start = ++j
        while (j < n && accept.charCodeAt(j) !== 0x22) j += accept.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1
        value = accept.slice(start, Math.min(j, n))
        j++
        while (j < n) {
          const c = accept.charCodeAt(j)
          if (c === 0x2c || c === 0x3b) break
          j++
        }
      } else {
        const start = j
        while (j < n) {
          const c = accept.charCodeAt(j)
          if (c === 0x2c || c === 0x3b) break
          j++
        }
        value = accept.slice(start, j).trim()
      }
      // A q that is not a plain number becomes 0, so it cannot smuggle ',' or ';' into the output.
      if (name === 'q' && q === undefined) q = Q_VALUE.test(value) ? value : '0'
    }
    if (element !== '') {
      if (q !== undefined) element += ';q=' + q
      out = out === '' ? element : out + ',' + element
    }
    i = j + 1
  }
  return out
}
