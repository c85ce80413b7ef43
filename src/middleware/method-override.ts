/**
 * method-override — let clients that can only send GET and POST (HTML forms,
 * old proxies) ask for PATCH or DELETE (CloudSync spec §1.4).
 *
 * Only a POST is ever overridden, and only to an allow-listed method: a
 * request can never be turned into a safe method (GET, HEAD) that skips
 * write checks, nor into CONNECT or TRACE.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { contextOf } from './context.js'
import type { ConnectRequest, Middleware, Next } from './context.js'
import { HttpError } from './problem.js'

export interface MethodOverrideOptions {
  /** Methods a POST may become. Default `['PATCH', 'DELETE']`. GET, HEAD, CONNECT and TRACE are refused. */
  methods?: readonly string[]
  /** Request header carrying the method, or `false` to ignore headers. Default `'X-HTTP-Method-Override'`. */
  header?: string | false
  /** Query parameter carrying the method, or `false` to ignore the query. Default `'_method'`. */
  query?: string | false
}

const NEVER_TARGETS = new Set(['GET', 'HEAD', 'CONNECT', 'TRACE'])
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/**
 * Create the method-override middleware.
 *
 * On a POST, `X-HTTP-Method-Override: DELETE` (or `?_method=DELETE`) makes
 * `req.method` `DELETE`; the header wins over the query, the value is
 * trimmed and case-insensitive, and an empty value means no override. Any
 * value outside `methods` is refused with a 405 problem (code
 * `override_not_allowed`). `req.originalMethod` and
 * `contextOf(req).originalMethod` keep `POST`.
 *
 * @example
 * import connect from 'connect'
 * import { methodOverride } from 'cloudsync-kit/method-override'
 *
 * const app = connect()
 * app.use(methodOverride())
 * app.use((req, res) => res.end(req.method)) // POST ?_method=DELETE → "DELETE"
 */
export function methodOverride(options: MethodOverrideOptions = {}): Middleware {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('methodOverride: options must be an object')
  }
  const methods = normalizeMethods(options.methods)
  const header = normalizeName(options.header, 'X-HTTP-Method-Override', 'header')
  const query = normalizeName(options.query, '_method', 'query')
  if (header === false && query === false) {
    throw new TypeError('methodOverride: options "header" and "query" cannot both be false')
  }
  const headerKey = header === false ? '' : header.toLowerCase()
  const allowed = new Set(methods)
  const detail = `This method override is not allowed. ${describeSources(header, query)} accepts only ${methods.join(' or ')} on a POST request; send one of those, or no override.`

  return function methodOverrideMiddleware(req: IncomingMessage, res: ServerResponse, next: Next): void {
    if (req.method !== 'POST') return next()

    let raw: string | undefined
    if (header !== false) {
      addVary(res, header)
      const value = req.headers[headerKey]
      // Node joins repeated custom headers with ", "; an array only shows up for set-cookie-like names.
      raw = Array.isArray(value) ? value.join(', ') : value
      if (raw !== undefined && javaTrim(raw) === '') raw = undefined
    }
    if (raw === undefined && query !== false) raw = queryValue(req.url, query)
    if (raw === undefined) return next()

    const method = javaTrim(raw).toUpperCase()
    if (method === '') return next()
    if (!allowed.has(method)) {
      return next(new HttpError(405, detail, { code: 'override_not_allowed' }))
    }

    const r = req as ConnectRequest
    if (r.originalMethod === undefined) r.originalMethod = req.method
    contextOf(req).originalMethod = req.method
    req.method = method
    next()
  }
}

function normalizeMethods(methods: readonly string[] | undefined): string[] {
  if (methods === undefined) return ['PATCH', 'DELETE']
  if (!Array.isArray(methods) || methods.length === 0) {
    throw new TypeError('methodOverride: option "methods" must be a non-empty array of method names')
  }
  const out: string[] = []
  for (const m of methods) {
    if (typeof m !== 'string' || !TOKEN.test(m)) {
      throw new TypeError(`methodOverride: option "methods" contains an invalid method name: ${String(m)}`)
    }
    const upper = m.toUpperCase()
    if (NEVER_TARGETS.has(upper)) {
      throw new TypeError(`methodOverride: option "methods" must not contain ${upper}: a POST may never become a safe or tunnelling method`)
    }
    if (!out.includes(upper)) out.push(upper)
  }
  return out
}

function normalizeName(value: string | false | undefined, fallback: string, option: string): string | false {
  if (value === undefined) return fallback
  if (value === false) return false
  if (typeof value !== 'string' || !TOKEN.test(value)) {
    throw new TypeError(`methodOverride: option "${option}" must be a non-empty token string or false`)
  }
  return value
}

function describeSources(header: string | false, query: string | false): string {
  if (header === false) return `The ${query} query parameter`
  if (query === false) return `The ${header} header`
  return `The ${header} header (or ${query} query parameter)`
}

/**
 * The first value of query parameter `name` in `url`, or undefined. Cheap on
 * the common path: no allocation unless the query could contain the name.
 */
function queryValue(url: string | undefined, name: string): string | undefined {
  if (url === undefined) return undefined
  const q = url.indexOf('?')
  if (q === -1) return undefined
  // A percent-encoded key (`%5Fmethod`) still counts, so '%' forces a real parse.
  if (url.indexOf(name, q + 1) === -1 && url.indexOf('%', q + 1) === -1) return undefined
  const value = new URLSearchParams(url.slice(q + 1)).get(name)
  return value === null ? undefined : value
}

/** Trim code points ≤ U+0020 at both ends (the spec's Java `String.trim`). */
function javaTrim(s: string): string {
  let start = 0
  let end = s.length
  while (start < end && s.charCodeAt(start) <= 0x20) start++
  while (end > start && s.charCodeAt(end - 1) <= 0x20) end--
  return start === 0 && end === s.length ? s : s.slice(start, end)
}

/** Append `field` to the response's Vary header unless already listed (or `*`). */
function addVary(res: ServerResponse, field: string): void {
  const current = res.getHeader('Vary')
  if (current === undefined) {
    res.setHeader('Vary', field)
    return
  }
  const text = Array.isArray(current) ? current.join(', ') : String(current)
  const wanted = field.toLowerCase()
  for (const part of text.split(',')) {
    const name = part.trim().toLowerCase()
    if (name === wanted || name === '*') return
  }
  res.setHeader('Vary', text.trim() === '' ? field : `${text}, ${field}`)
}
