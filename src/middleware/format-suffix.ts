/**
 * format-suffix — `.json` / `.xml` on the last path segment picks the
 * response format (CloudSync spec §2.4).
 *
 * The suffix is stripped from `req.url` so routing sees the plain path, and
 * recorded on the request context so negotiation, links and error bodies can
 * honour it. `Accept` is left untouched on purpose: later pieces (such as
 * authentication deciding whether a request is a browser navigation) still
 * need the client's real header.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { contextOf } from './context.js'
import type { Middleware, Next } from './context.js'

export interface FormatSuffixOptions {
  /**
   * Recognised suffixes (lower case, with the dot) and the media type each
   * stands for. Default `{ '.json': 'application/json', '.xml': 'application/xml' }`.
   */
  formats?: Record<string, string>
}

const DEFAULT_FORMATS: Readonly<Record<string, string>> = {
  '.json': 'application/json',
  '.xml': 'application/xml'
}
const SUFFIX = /^\.[a-z0-9][a-z0-9._+-]*$/
const MEDIA_TYPE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/**
 * Create the format-suffix middleware.
 *
 * `GET /tasks/3.json?x=1` continues as `GET /tasks/3?x=1` with
 * `contextOf(req).format = { suffix: '.json', type: 'application/json' }`
 * and `X-Content-Type-Options: nosniff` set. One trailing slash is ignored
 * (`/users.json/`), only the final suffix counts (`/a.json.xml` is `/a.json`
 * as XML), and a segment that is only a suffix (`/.json`), an upper-case or
 * unknown suffix, or a percent-encoded dot (`/a%2Ejson`) is left alone.
 *
 * A handler answering a suffixed request must send exactly the recorded
 * `type`: the suffix comes from the URL, so sending anything else (HTML,
 * say) would let a crafted link download attacker-shaped content.
 *
 * @example
 * import { formatSuffix, currentSuffix } from 'cloudsync-kit/format-suffix'
 *
 * app.use(formatSuffix())
 * app.get('/tasks/:id', (req, res) => res.send(currentSuffix(req))) // GET /tasks/3.xml → ".xml"
 */
export function formatSuffix(options: FormatSuffixOptions = {}): Middleware {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('formatSuffix: options must be an object')
  }
  const formats = buildFormats(options.formats)

  return function formatSuffixMiddleware(req: IncomingMessage, res: ServerResponse, next: Next): void {
    const url = req.url
    if (url === undefined || url.length < 3) return next()
    const q = url.indexOf('?')
    let end = q === -1 ? url.length : q
    // One trailing slash is not part of the name: users.json/ ≡ users.json.
    if (end > 1 && url.charCodeAt(end - 1) === 0x2f) end--
    const dot = url.lastIndexOf('.', end - 1)
    if (dot === -1) return next()
    const slash = url.lastIndexOf('/', end - 1)
    // The dot must be in the last segment and leave a non-empty name before it.
    if (dot <= slash + 1) return next()
    const suffix = url.slice(dot, end)
    const type = formats.get(suffix)
    if (type === undefined) return next()
    const ctx = contextOf(req)
    // Never strip twice (a piece mounted at two levels would turn /a.json.xml into /a).
    if (ctx.format !== undefined) return next()

    req.url = q === -1 ? url.slice(0, dot) : url.slice(0, dot) + url.slice(q)
    ctx.format = { suffix, type }
    res.setHeader('X-Content-Type-Options', 'nosniff')
    next()
  }
}

function buildFormats(formats: Record<string, string> | undefined): Map<string, string> {
  if (formats === undefined) return new Map(Object.entries(DEFAULT_FORMATS))
  if (typeof formats !== 'object' || formats === null || Array.isArray(formats)) {
    throw new TypeError('formatSuffix: option "formats" must be an object mapping suffixes to media types')
  }
  const map = new Map<string, string>()
  for (const [suffix, type] of Object.entries(formats)) {
    if (!SUFFIX.test(suffix)) {
      throw new TypeError(`formatSuffix: option "formats" has an invalid suffix "${suffix}" (expected a dot and lower-case letters or digits, e.g. ".json")`)
    }
    if (typeof type !== 'string' || !MEDIA_TYPE.test(type)) {
      throw new TypeError(`formatSuffix: option "formats" maps "${suffix}" to an invalid media type (expected "type/subtype")`)
    }
    map.set(suffix, type.toLowerCase())
  }
  if (map.size === 0) throw new TypeError('formatSuffix: option "formats" must list at least one suffix')
  return map
}

/**
 * The suffix recorded for `req` (`'.json'`, `'.xml'`), or `''` when none.
 *
 * @example
 * const sfx = currentSuffix(req) // '' for GET /tasks, '.json' for GET /tasks.json
 */
export function currentSuffix(req: IncomingMessage): string {
  return contextOf(req).format?.suffix ?? ''
}

/**
 * `link` with the request's suffix appended to its path (before any `?query`
 * or `#fragment`), so links in a `.json` response stay `.json` (spec §2.4).
 * Returns `link` unchanged when the request had no suffix or the link's path
 * has no last segment to carry one.
 *
 * @example
 * // during GET /api/tasks.json
 * withSuffix(req, '/api/tasks/3?view=full') // '/api/tasks/3.json?view=full'
 */
export function withSuffix(req: IncomingMessage, link: string): string {
  const suffix = currentSuffix(req)
  if (suffix === '') return link
  let end = link.length
  for (let i = 0; i < link.length; i++) {
    const c = link.charCodeAt(i)
    if (c === 0x3f /* ? */ || c === 0x23 /* # */) {
      end = i
      break
    }
  }
  // With a scheme or authority, the path starts at the first '/' after the host.
  let pathStart = 0
  const authority = link.startsWith('//') ? 0 : link.indexOf('://')
  if (authority !== -1 && authority < end) {
    pathStart = link.indexOf('/', authority + (authority === 0 ? 2 : 3))
    if (pathStart === -1 || pathStart >= end) return link
  }
  let pathEnd = end
  // A trailing slash is equivalent to none, and the suffix belongs on the name.
  if (pathEnd > pathStart && link.charCodeAt(pathEnd - 1) === 0x2f) pathEnd--
  if (pathEnd <= pathStart || link.charCodeAt(pathEnd - 1) === 0x2f) return link
  return link.slice(0, pathEnd) + suffix + link.slice(end)
}
