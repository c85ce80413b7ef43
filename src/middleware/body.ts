/**
 * body — check the request `Content-Type`, read the body within a size
 * limit and parse it safely (CloudSync spec §2.5, defect D45).
 *
 * Never trust input: the size is limited before anything is parsed; JSON
 * keys `__proto__`, `constructor` and `prototype` are refused anywhere in the
 * document; XML with a DOCTYPE is refused before the parser sees it (no DTD,
 * no entity expansion), values stay strings, and nesting depth is limited.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { contextOf } from './context.js'
import type { ConnectRequest, Middleware, Next } from './context.js'
import { HttpError } from './problem.js'

export { contextOf } from './context.js'

/** Limits applied by {@link readBody}. */
export interface BodyOptions {
  /** Largest accepted body in bytes. Default 262144 (256 KiB). */
  limit?: number
  /** Deepest accepted nesting of JSON objects/arrays or XML elements. Default 32. */
  maxDepth?: number
}

/** The types a resource accepts as request bodies, fixed or computed per request. */
export type Consumes = readonly string[] | ((req: IncomingMessage) => readonly string[])

export interface BodyMiddlewareOptions extends BodyOptions {
  /** Accepted request media types, e.g. `['application/vnd.fcrepo-cloudsync.task+json', 'application/json']`. */
  consumes: Consumes
}

/** Default size limit: 256 KiB. */
export const DEFAULT_BODY_LIMIT = 256 * 1024
/** Default nesting limit. */
export const DEFAULT_MAX_DEPTH = 32

const MEDIA_TYPE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])
const DOCTYPE = /<!DOCTYPE/i
// Characters XML 1.0 forbids outright; refusing them keeps NULs and the like out of stored values.
const INVALID_XML_CHARS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/
const WRAPPER = 'r'
const HEX_DIGITS = /^[0-9a-fA-F]{1,6}$/
const DEC_DIGITS = /^[0-9]{1,7}$/
const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * The entry of `consumes` matching the request's `Content-Type`
 * (parameters such as `charset` and letter case ignored). Throws a 415
 * `HttpError` (code `unsupported_media_type`) when the header is missing or
 * names another type; the error carries `Accept-Post` / `Accept-Patch`
 * listing what would be accepted.
 *
 * @example
 * import { matchContentType } from 'cloudsync-kit/body'
 *
 * // Content-Type: application/vnd.fcrepo-cloudsync.task+json; charset=UTF-8
 * matchContentType(req, ['application/vnd.fcrepo-cloudsync.task+json', 'application/json'])
 * // → 'application/vnd.fcrepo-cloudsync.task+json'
 */
export function matchContentType(req: IncomingMessage, consumes: readonly string[]): string {
  const header = req.headers['content-type']
  const sent = header === undefined ? '' : baseType(header)
  if (sent !== '') {
    for (const candidate of consumes) {
      if (candidate.length >= sent.length && baseType(candidate) === sent) return candidate
    }
  }
  const list = consumes.join(', ')
  const detail = sent === ''
    ? `This request needs a body with a Content-Type header; send it as one of: ${list}.`
    : `Content-Type ${MEDIA_TYPE.test(sent) ? sent + ' ' : ''}is not accepted here; send the body as one of: ${list}.`
  const headers: Record<string, string> = {}
  if (req.method === 'POST') headers['Accept-Post'] = list
  else if (req.method === 'PATCH') headers['Accept-Patch'] = list
  throw new HttpError(415, detail, { code: 'unsupported_media_type', headers })
}

/**
 * Read the body of `req` (at most `limit` bytes, decoded as UTF-8) and parse
 * it as `type`:
 *
 * - `application/json` and `*+json`: any JSON value; empty → 400
 *   `empty_body`, syntax error → 400 `malformed_body`, a key `__proto__`,
 *   `constructor` or `prototype` anywhere → 400 `forbidden_key`, deeper than
 *   `maxDepth` → 400 `too_deep`.
 * - `application/xml`, `text/xml` and `*+xml`: one root element, shaped like
 *   the JSON equivalent (`<user><name>bob</name></user>` →
 *   `{ user: { name: 'bob' } }`; empty element → `''`; repeated elements →
 *   array); values are strings with their whitespace kept, attributes,
 *   comments and processing instructions ignored; any `<!DOCTYPE` → 400
 *   `doctype_forbidden`.
 * - `application/x-www-form-urlencoded`: an object of strings (first value of
 *   a repeated name wins).
 * - other `text/*`: the string; anything else: the raw `Buffer`.
 *
 * Too large → 413 `payload_too_large` as soon as `Content-Length` or the
 * bytes read cross the limit (the error asks for `Connection: close`, so the
 * rest of the upload is not read). Compressed bodies → 415
 * `unsupported_encoding`; invalid UTF-8 → 400 `malformed_body`; a client that
 * disconnects mid-body → 400 `request_aborted`.
 *
 * @example
 * import { matchContentType, readBody } from 'cloudsync-kit/body'
 *
 * const type = matchContentType(req, ['application/json', 'application/xml'])
 * const value = await readBody(req, type, { limit: 64 * 1024 })
 */
export function readBody(req: IncomingMessage, type: string, options: BodyOptions = {}): Promise<unknown> {
  let limit: number
  let maxDepth: number
  try {
    limit = checkLimit(options.limit, 'readBody')
    maxDepth = checkDepth(options.maxDepth, 'readBody')
  } catch (err) {
    return Promise.reject(err)
  }
  const kind = kindOf(type)
  const encoding = req.headers['content-encoding']
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
    return Promise.reject(new HttpError(415, 'Compressed request bodies are not supported; send the body without Content-Encoding.', { code: 'unsupported_encoding' }))
  }
  return readRaw(req, limit).then((raw) => parse(raw, kind, maxDepth))
}

/**
 * Create the body middleware: on requests that carry a body (everything but
 * GET, HEAD, DELETE and OPTIONS), match `Content-Type` against `consumes`
 * (415), read and parse the body (413 / 400), then set
 * `contextOf(req).body`, `contextOf(req).bodyType` and — unless another
 * parser already did — `req.body`. A `consumes` function returning an empty
 * list means "this request takes no body" and skips the piece.
 *
 * @example
 * import { body, contextOf } from 'cloudsync-kit/body'
 *
 * app.post('/tasks', body({ consumes: ['application/json', 'application/xml'] }), (req, res) => {
 *   const { task } = contextOf(req).body as { task: { name: string } }
 *   res.end(task.name)
 * })
 */
export function body(options: BodyMiddlewareOptions): Middleware {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('body: options must be an object with "consumes"')
  }
  const consumes = options.consumes
  if (typeof consumes !== 'function') checkConsumes(consumes)
  const readOptions: BodyOptions = {
    limit: checkLimit(options.limit, 'body'),
    maxDepth: checkDepth(options.maxDepth, 'body')
  }

  return function bodyMiddleware(req: IncomingMessage, res: ServerResponse, next: Next): void {
    const method = req.method
    if (method === 'GET' || method === 'HEAD' || method === 'DELETE' || method === 'OPTIONS') return next()
    const ctx = contextOf(req)
    if (ctx.bodyType !== undefined) return next()
    let type: string
    try {
      const list = typeof consumes === 'function' ? consumes(req) : consumes
      if (!Array.isArray(list) || list.length === 0) return next()
      type = matchContentType(req, list)
    } catch (err) {
      return next(err)
    }
    readBody(req, type, readOptions).then((value) => {
      ctx.body = value
      ctx.bodyType = type
      const r = req as ConnectRequest
      if (r.body === undefined) r.body = value
      next()
    }, (err: unknown) => {
      // Whatever error handler runs, do not keep reading an oversized upload on this connection.
      if (err instanceof HttpError && err.status === 413 && !res.headersSent) res.setHeader('Connection', 'close')
      next(err)
    })
  }
}

// ---------------------------------------------------------------------------
// Reading

function readRaw(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = req.headers['content-length']
    if (declared !== undefined && Number(declared) > limit) {
      reject(tooLarge(limit))
      return
    }
    if (req.readableEnded) {
      reject(new Error('body: the request body was already read by another parser; mount body() before it or remove the other parser'))
      return
    }
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer | string): void => {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
      size += buf.length
      if (size > limit) {
        cleanup()
        // Discard the rest rather than pause: a paused request would stall a kept-alive connection.
        req.resume()
        reject(tooLarge(limit))
        return
      }
      chunks.push(buf)
    }
    const onEnd = (): void => {
      cleanup()
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size))
    }
    const onAbort = (): void => {
      cleanup()
      reject(new HttpError(400, 'The request body was not received completely; send the request again.', { code: 'request_aborted' }))
    }
    function cleanup(): void {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onAbort)
      req.off('close', onAbort)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onAbort)
    req.on('close', onAbort)
  })
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, `The request body is larger than the limit of ${limit} bytes; send a smaller body.`, {
    code: 'payload_too_large',
    headers: { Connection: 'close' }
  })
}

// ---------------------------------------------------------------------------
// Parsing

type Kind = 'json' | 'xml' | 'form' | 'text' | 'raw'

function kindOf(type: string): Kind {
  const base = baseType(type)
  if (base === 'application/json' || base.endsWith('+json')) return 'json'
  if (base === 'application/xml' || base === 'text/xml' || base.endsWith('+xml')) return 'xml'
  if (base === 'application/x-www-form-urlencoded') return 'form'
  if (base.startsWith('text/')) return 'text'
  return 'raw'
}

function parse(raw: Buffer, kind: Kind, maxDepth: number): unknown {
  if (kind === 'raw') return raw
  let text: string
  try {
    text = utf8.decode(raw)
  } catch {
    throw bad('malformed_body', 'The request body is not valid UTF-8 text; encode it as UTF-8 and send it again.')
  }
  if (kind === 'json') return parseJson(text, maxDepth)
  if (kind === 'xml') return parseXml(text, maxDepth)
  if (kind === 'form') return parseForm(text)
  return text
}

function parseJson(text: string, maxDepth: number): unknown {
  if (isBlank(text)) throw emptyBody('JSON')
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw bad('malformed_body', 'The request body is not valid JSON; check its syntax and send it again.')
  }
  checkJson(value, 1, maxDepth)
  return value
}

/** Walk a parsed JSON value: refuse reserved keys and nesting beyond maxDepth (recursion is bounded by it). */
function checkJson(value: unknown, depth: number, maxDepth: number): void {
  if (typeof value !== 'object' || value === null) return
  if (depth > maxDepth) throw tooDeep(maxDepth)
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) checkJson(value[i], depth + 1, maxDepth)
    return
  }
  const obj = value as Record<string, unknown>
  // JSON.parse defines "__proto__" as an own property, so for…in sees it like any other key.
  for (const key in obj) {
    if (FORBIDDEN_KEYS.has(key)) throw forbiddenKey(key)
    checkJson(obj[key], depth + 1, maxDepth)
  }
}

function parseForm(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, value] of new URLSearchParams(text)) {
    if (FORBIDDEN_KEYS.has(key)) throw forbiddenKey(key)
    if (!Object.hasOwn(out, key)) out[key] = value
  }
  return out
}

const xmlParsers = new Map<number, XMLParser>()

function xmlParser(maxDepth: number): XMLParser {
  let parser = xmlParsers.get(maxDepth)
  if (parser === undefined) {
    parser = new XMLParser({
      preserveOrder: true,
      ignoreAttributes: true,
      parseTagValue: false,
      parseAttributeValue: false,
      trimValues: false,
      // Only the five predefined entities and character references exist without a DTD; we decode those ourselves.
      processEntities: false,
      htmlEntities: false,
      ignoreDeclaration: true,
      ignorePiTags: true,
      commentPropName: false,
      cdataPropName: '#cdata',
      removeNSPrefix: false,
      jPath: false,
      // Keep names exactly as sent (the result is checked for reserved keys below).
      onDangerousProperty: (name: string) => name,
      // +1 for the wrapper element, +1 because the parser counts from zero: a cheap early stop.
      maxNestedTags: maxDepth + 2
    })
    xmlParsers.set(maxDepth, parser)
  }
  return parser
}

type XmlNode = Record<string, unknown>

function parseXml(text: string, maxDepth: number): unknown {
  if (isBlank(text)) throw emptyBody('XML')
  // Before any parsing: no DTD means no entity expansion and no external fetches.
  if (DOCTYPE.test(text)) {
    throw bad('doctype_forbidden', 'XML request bodies must not contain a DOCTYPE declaration; remove it and send the document again.')
  }
  if (INVALID_XML_CHARS.test(text)) throw malformedXml()
  let content = text
  if (content.startsWith('<?xml')) {
    const end = content.indexOf('?>')
    if (end === -1) throw malformedXml()
    content = content.slice(end + 2)
  }
  // The validator accepts several roots and text after the root; inside a
  // wrapper both show up as siblings we can check.
  const wrapped = `<${WRAPPER}>${content}</${WRAPPER}>`
  if (XMLValidator.validate(wrapped) !== true) throw malformedXml()
  let tree: XmlNode[]
  try {
    tree = xmlParser(maxDepth).parse(wrapped) as XmlNode[]
  } catch (err) {
    const message = err instanceof Error ? err.message : ''
    if (message.startsWith('Maximum nested tags')) throw tooDeep(maxDepth)
    if (message.startsWith('[SECURITY]')) throw forbiddenKey(reservedNameIn(message))
    throw malformedXml()
  }
  const top = tree.length === 1 ? tree[0]![WRAPPER] : undefined
  if (!Array.isArray(top)) throw malformedXml()
  let root: XmlNode | undefined
  for (const node of top as XmlNode[]) {
    if (Object.hasOwn(node, '#text') || Object.hasOwn(node, '#cdata')) {
      if (!isBlank(textOf(node))) throw malformedXml()
    } else if (root === undefined) {
      root = node
    } else {
      throw malformedXml()
    }
  }
  if (root === undefined) throw malformedXml()
  const name = nameOf(root)
  if (FORBIDDEN_KEYS.has(name)) throw forbiddenKey(name)
  return { [name]: convert(root[name] as XmlNode[], 1, maxDepth) }
}

/** One element's children → a string (leaf) or an object of its child elements. */
function convert(children: XmlNode[], depth: number, maxDepth: number): unknown {
  if (depth > maxDepth) throw tooDeep(maxDepth)
  let obj: Record<string, unknown> | undefined
  let text = ''
  let significant = false
  for (const node of children) {
    if (Object.hasOwn(node, '#text') || Object.hasOwn(node, '#cdata')) {
      const part = textOf(node)
      if (!significant && !isBlank(part)) significant = true
      text += part
      continue
    }
    const name = nameOf(node)
    if (FORBIDDEN_KEYS.has(name)) throw forbiddenKey(name)
    const value = convert(node[name] as XmlNode[], depth + 1, maxDepth)
    if (obj === undefined) obj = {}
    if (!Object.hasOwn(obj, name)) {
      obj[name] = value
    } else {
      // Values are strings or objects, never arrays, so an array here is a list we built.
      const existing = obj[name]
      if (Array.isArray(existing)) existing.push(value)
      else obj[name] = [existing, value]
    }
  }
  if (obj === undefined) return text
  // Whitespace between child elements is layout; other text beside elements has no JSON equivalent.
  if (significant) {
    throw bad('malformed_body', 'The XML body mixes text and elements inside one element; put each value in its own element.')
  }
  return obj
}

function nameOf(node: XmlNode): string {
  for (const key in node) return key
  return ''
}

function textOf(node: XmlNode): string {
  const raw = node['#text']
  if (raw !== undefined) {
    const decoded = decodeEntities(String(raw))
    if (decoded === undefined) throw malformedXml()
    return decoded
  }
  // CDATA content is literal: no entity decoding.
  const cdata = node['#cdata'] as XmlNode[] | undefined
  let out = ''
  if (Array.isArray(cdata)) for (const part of cdata) out += String(part['#text'] ?? '')
  return out
}

/** Decode the five predefined entities and character references; undefined for anything else. */
function decodeEntities(s: string): string | undefined {
  let amp = s.indexOf('&')
  if (amp === -1) return s
  let out = ''
  let last = 0
  while (amp !== -1) {
    const semi = s.indexOf(';', amp + 1)
    if (semi === -1 || semi - amp > 10) return undefined
    const name = s.slice(amp + 1, semi)
    let ch: string | undefined
    switch (name) {
      case 'lt': ch = '<'; break
      case 'gt': ch = '>'; break
      case 'amp': ch = '&'; break
      case 'quot': ch = '"'; break
      case 'apos': ch = "'"; break
      default: ch = charReference(name)
    }
    if (ch === undefined) return undefined
    out += s.slice(last, amp) + ch
    last = semi + 1
    amp = s.indexOf('&', last)
  }
  return out + s.slice(last)
}

function charReference(name: string): string | undefined {
  if (name.charCodeAt(0) !== 0x23 /* # */) return undefined
  const hex = name.charCodeAt(1) === 0x78 /* x */
  const digits = name.slice(hex ? 2 : 1)
  if (!(hex ? HEX_DIGITS : DEC_DIGITS).test(digits)) return undefined
  const code = parseInt(digits, hex ? 16 : 10)
  // Only characters XML 1.0 allows may be referenced.
  const legal = code === 0x9 || code === 0xa || code === 0xd ||
    (code >= 0x20 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff)
  return legal ? String.fromCodePoint(code) : undefined
}

function reservedNameIn(message: string): string {
  for (const key of FORBIDDEN_KEYS) if (message.includes(`"${key}"`)) return key
  return '__proto__'
}

// ---------------------------------------------------------------------------
// Helpers

/** `type/subtype` in lower case, without parameters or surrounding space. */
function baseType(value: string): string {
  const semi = value.indexOf(';')
  return (semi === -1 ? value : value.slice(0, semi)).trim().toLowerCase()
}

function isBlank(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false
  }
  return true
}

function bad(code: string, detail: string): HttpError {
  return new HttpError(400, detail, { code })
}

function emptyBody(format: string): HttpError {
  return bad('empty_body', `The request body is empty; send a ${format} document.`)
}

function malformedXml(): HttpError {
  return bad('malformed_body', 'The request body is not well-formed XML with a single root element; check its syntax and send it again.')
}

function tooDeep(maxDepth: number): HttpError {
  return bad('too_deep', `The request body nests deeper than ${maxDepth} levels; send a flatter document.`)
}

function forbiddenKey(key: string): HttpError {
  return bad('forbidden_key', `The request body uses the reserved name "${key}"; remove or rename that field.`)
}

function checkConsumes(consumes: unknown): void {
  if (!Array.isArray(consumes) || consumes.length === 0) {
    throw new TypeError('body: option "consumes" must be a non-empty array of media types or a function')
  }
  for (const type of consumes) {
    if (typeof type !== 'string' || !MEDIA_TYPE.test(baseType(type))) {
      throw new TypeError(`body: option "consumes" contains an invalid media type: ${String(type)}`)
    }
  }
}

function checkLimit(limit: unknown, where: string): number {
  if (limit === undefined) return DEFAULT_BODY_LIMIT
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1) {
    throw new TypeError(`${where}: option "limit" must be a positive integer number of bytes`)
  }
  return limit
}

function checkDepth(maxDepth: unknown, where: string): number {
  if (maxDepth === undefined) return DEFAULT_MAX_DEPTH
  if (typeof maxDepth !== 'number' || !Number.isInteger(maxDepth) || maxDepth < 1 || maxDepth > 1000) {
    throw new TypeError(`${where}: option "maxDepth" must be an integer from 1 to 1000`)
  }
  return maxDepth
}
