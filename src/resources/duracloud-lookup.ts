/**
 * duracloud-lookup — the DuraCloud look-ups behind ops #27–#30 (CloudSync
 * spec §4.8): list the storage-provider accounts of a DuraStore, and the
 * spaces of one account, with credentials the user typed into the "new
 * DuraCloud store" dialog.
 *
 * Backend-independent and HTTP-framework-independent: the resource handler
 * takes the parameters from the query string or the form body
 * ({@link parseLookupParams}), calls {@link lookupProviderAccounts} or
 * {@link lookupSpaces}, and renders the list. Failures are `HttpError`s:
 * 400 for parameters the client must fix, 502 for anything upstream.
 *
 * Defects avoided: D3 (form body accepted), D21 (ids stay strings), D32
 * (tolerant parsing, 502 not 500), D33 (credentials per request), D41
 * (parameters encoded), D46 (no DTD / entity processing), D5/D6 (see
 * `outbound.ts`).
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { HttpError } from '../middleware/problem.js'
import { basicAuthorization, checkOutboundUrl, fetchText } from './outbound.js'
import type { OutboundPolicy } from './outbound.js'

export type { OutboundPolicy } from './outbound.js'

/** One DuraCloud storage-provider account (spec §3.10). */
export interface ProviderAccount {
  /** DuraCloud store id, e.g. `"0"`; always a string. */
  id: string
  /** Whether DuraCloud marks it as the primary account. */
  primary: boolean
  /** Storage provider type, e.g. `AMAZON_S3`. */
  type: string
}

/** One DuraCloud space (spec §3.11). */
export interface Space {
  /** The space name. */
  id: string
}

/**
 * Look-up parameters as the client sent them. Every member may be missing;
 * the look-up functions check them and answer 400 naming the missing one.
 */
export interface LookupParams {
  /** DuraStore base URL, e.g. `https://host/durastore`. */
  url?: string
  username?: string
  password?: string
  /** Only for {@link lookupSpaces}: the DuraCloud store id. */
  providerAccountId?: string
}

const PARAM_NAMES = ['url', 'username', 'password', 'providerAccountId'] as const

/**
 * Take the look-up parameters from a query string or a form body (first
 * value of each; other parameters ignored). Also accepts an already parsed
 * body object (string values, or arrays whose first string is used). Never
 * throws; what is missing is simply absent.
 *
 * @example
 * // GET  …/duracloud/spaces?url=…&username=…   (legacy)
 * const params = parseLookupParams(new URL(req.url, 'http://x').searchParams)
 * // POST …/duracloud/spaces  (application/x-www-form-urlencoded, preferred)
 * const params = parseLookupParams(new URLSearchParams(bodyText))
 */
export function parseLookupParams(source: URLSearchParams | Readonly<Record<string, unknown>>): LookupParams {
  const params: LookupParams = {}
  if (source instanceof URLSearchParams) {
    for (const name of PARAM_NAMES) {
      const value = source.get(name)
      if (value !== null) params[name] = value
    }
    return params
  }
  if (typeof source !== 'object' || source === null) return params
  for (const name of PARAM_NAMES) {
    if (!Object.prototype.hasOwnProperty.call(source, name)) continue
    let value = source[name]
    if (Array.isArray(value)) value = value.find((v) => typeof v === 'string')
    if (typeof value === 'string') params[name] = value
  }
  return params
}

const LABEL = 'The DuraCloud server'

/**
 * `GET {url}/stores` with the given credentials and return the accounts in
 * upstream order.
 *
 * @throws HttpError 400 (`missing_parameter`, `invalid_parameter`,
 *   `invalid_url`, `host_not_allowed`) or 502 (`upstream_*`).
 * @example
 * const accounts = await lookupProviderAccounts(
 *   { url: 'https://demo.duracloud.org/durastore', username: 'alice', password: 's3cret' },
 *   outboundPolicyFromEnv())
 * // → [{ id: '0', primary: true, type: 'AMAZON_S3' }]
 */
export async function lookupProviderAccounts(params: LookupParams, policy: OutboundPolicy): Promise<ProviderAccount[]> {
  const { base, authorization } = checkCommon(params, policy)
  const target = withPath(base, '/stores')
  const { body } = await fetchText(target, requestHeaders(authorization), policy, LABEL)
  const accounts = parseStoresXml(body)
  if (accounts === undefined) throw unparsable(base)
  return accounts
}

/**
 * `GET {url}/spaces?storeID={providerAccountId}` with the given credentials
 * and return the spaces in upstream order.
 *
 * @throws HttpError 400 (`missing_parameter`, `invalid_parameter`,
 *   `invalid_url`, `host_not_allowed`) or 502 (`upstream_*`).
 * @example
 * const spaces = await lookupSpaces(
 *   { url: 'https://demo.duracloud.org/durastore', username: 'alice', password: 's3cret', providerAccountId: '0' },
 *   outboundPolicyFromEnv())
 * // → [{ id: 'fedora-backups' }, { id: 'images' }]
 */
export async function lookupSpaces(params: LookupParams, policy: OutboundPolicy): Promise<Space[]> {
  const { base, authorization } = checkCommon(params, policy)
  const storeId = required(params.providerAccountId, 'providerAccountId', 'provider account id').trim()
  const target = withPath(base, '/spaces')
  target.search = `?storeID=${encodeURIComponent(storeId)}`
  const { body } = await fetchText(target, requestHeaders(authorization), policy, LABEL)
  const spaces = parseSpacesXml(body)
  if (spaces === undefined) throw unparsable(base)
  return spaces
}

function checkCommon(params: LookupParams, policy: OutboundPolicy): { base: URL; authorization: string } {
  if (typeof params !== 'object' || params === null) throw new TypeError('DuraCloud look-up: params must be an object')
  // Report the first missing parameter in the order the dialog asks for them.
  const url = required(params.url, 'url', 'DuraStore URL')
  const username = required(params.username, 'username', 'user name')
  const password = required(params.password, 'password', 'password')
  if (username.includes(':')) {
    // HTTP Basic cannot carry a colon in the user name (RFC 7617).
    throw new HttpError(400, 'The "username" parameter must not contain ":"; check the DuraCloud user name.', { code: 'invalid_parameter' })
  }
  const base = checkOutboundUrl(url, policy, 'url')
  return { base, authorization: basicAuthorization(username, password) }
}

function required(value: unknown, name: string, what: string): string {
  if (typeof value !== 'string' || isBlank(value)) {
    throw new HttpError(400, `Give the ${what} in the "${name}" parameter.`, { code: 'missing_parameter' })
  }
  return value
}

// Spec "blank": empty after removing code points ≤ U+0020.
function isBlank(value: string): boolean {
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) > 0x20) return false
  return true
}

function withPath(base: URL, suffix: string): URL {
  const target = new URL(base.href)
  // One or more trailing `/` removed before the resource name is appended.
  let path = target.pathname
  let end = path.length
  while (end > 0 && path.charCodeAt(end - 1) === 0x2f) end--
  path = path.slice(0, end)
  target.pathname = path + suffix
  return target
}

function requestHeaders(authorization: string): Record<string, string> {
  return { Authorization: authorization, Accept: 'application/xml, text/xml;q=0.9' }
}

function unparsable(base: URL): HttpError {
  return new HttpError(502, `${LABEL} at ${base.host} sent a response that is not DuraStore XML; check that the URL is the DuraStore base URL, such as https://host/durastore.`, { code: 'upstream_unparsable' })
}

// ---------------------------------------------------------------------------
// DuraStore XML

/** A node of fast-xml-parser's `preserveOrder` output. */
type OrderedNode = Record<string, unknown>

const parser = new XMLParser({
  preserveOrder: true, // upstream order is the list order; child names may vary
  ignoreAttributes: false,
  attributeNamePrefix: '',
  removeNSPrefix: true,
  parseTagValue: false, // ids stay strings (D21)
  parseAttributeValue: false,
  processEntities: false, // no DTD entities (D46); predefined ones are decoded below
  ignoreDeclaration: true,
  ignorePiTags: true,
  trimValues: true
})

const DOCTYPE = /<!DOCTYPE/i
const ATTRS = ':@'
const TEXT = '#text'

/** Parse, refusing DTDs, and return the single root element's name and children. */
function rootOf(xml: string): { name: string; children: OrderedNode[] } | undefined {
  if (typeof xml !== 'string' || DOCTYPE.test(xml)) return undefined
  if (XMLValidator.validate(xml) !== true) return undefined
  let doc: unknown
  try {
    doc = parser.parse(xml)
  } catch {
    return undefined
  }
  if (!Array.isArray(doc)) return undefined
  let root: { name: string; children: OrderedNode[] } | undefined
  for (const node of doc as OrderedNode[]) {
    const name = elementName(node)
    if (name === undefined) continue
    if (root !== undefined) return undefined // more than one root element
    const children = node[name]
    root = { name, children: Array.isArray(children) ? (children as OrderedNode[]) : [] }
  }
  // A well-formed HTML page is not a DuraStore answer.
  if (root === undefined || root.name.toLowerCase() === 'html') return undefined
  return root
}

/** The element name of a node, or `undefined` for text/comment nodes. */
function elementName(node: OrderedNode): string | undefined {
  for (const key in node) {
    if (key !== ATTRS && key !== TEXT) return key
  }
  return undefined
}

function attribute(node: OrderedNode, name: string): string | undefined {
  const attrs = node[ATTRS]
  if (typeof attrs !== 'object' || attrs === null) return undefined
  const value = (attrs as Record<string, unknown>)[name]
  return typeof value === 'string' ? decodeEntities(value) : undefined
}

/** The trimmed text content of the first child element called `name`. */
function childText(children: OrderedNode[], name: string): string | undefined {
  for (const child of children) {
    if (elementName(child) !== name) continue
    const parts = child[name]
    if (!Array.isArray(parts)) return ''
    let text = ''
    for (const part of parts as OrderedNode[]) {
      const t = part[TEXT]
      if (t !== undefined) text += String(t)
    }
    return decodeEntities(text).trim()
  }
  return undefined
}

const ENTITY = /&(?:#(\d{1,7})|#x([0-9a-fA-F]{1,6})|(amp|lt|gt|quot|apos));/g
const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }

/** Decode XML's predefined entities and character references; nothing else. */
function decodeEntities(text: string): string {
  if (!text.includes('&')) return text
  return text.replace(ENTITY, (whole, dec: string | undefined, hex: string | undefined, named: string | undefined) => {
    if (named !== undefined) return NAMED[named] ?? whole
    const code = dec !== undefined ? Number(dec) : Number.parseInt(hex!, 16)
    return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole
  })
}

/**
 * Parse a DuraStore `GET /stores` answer: one child element of the root per
 * account; `isPrimary="1"` → primary; child elements `id` and
 * `storageProviderType`. Returns `undefined` when the text is not such a
 * document (malformed, DOCTYPE, an account without id or type).
 *
 * @example
 * parseStoresXml('<storageProviderAccounts><storageAcct isPrimary="1"><id>0</id>' +
 *   '<storageProviderType>AMAZON_S3</storageProviderType></storageAcct></storageProviderAccounts>')
 * // → [{ id: '0', primary: true, type: 'AMAZON_S3' }]
 */
export function parseStoresXml(xml: string): ProviderAccount[] | undefined {
  const root = rootOf(xml)
  if (root === undefined) return undefined
  const accounts: ProviderAccount[] = []
  for (const node of root.children) {
    const name = elementName(node)
    if (name === undefined) continue // whitespace, text, comments (D32)
    const children = Array.isArray(node[name]) ? (node[name] as OrderedNode[]) : []
    const id = childText(children, 'id')
    const type = childText(children, 'storageProviderType')
    if (id === undefined || id === '' || type === undefined || type === '') return undefined
    accounts.push({ id, primary: attribute(node, 'isPrimary')?.trim() === '1', type })
  }
  return accounts
}

/**
 * Parse a DuraStore `GET /spaces` answer: the `id` attribute of each `space`
 * child element of the root, in order. Other elements are skipped. Returns
 * `undefined` when the text is not such a document (malformed, DOCTYPE, a
 * `space` without id).
 *
 * @example
 * parseSpacesXml('<spaces><space id="images"/><space id="backups"/></spaces>')
 * // → [{ id: 'images' }, { id: 'backups' }]
 */
export function parseSpacesXml(xml: string): Space[] | undefined {
  const root = rootOf(xml)
  if (root === undefined) return undefined
  const spaces: Space[] = []
  for (const node of root.children) {
    if (elementName(node) !== 'space') continue
    const id = attribute(node, 'id')?.trim()
    if (id === undefined || id === '') return undefined
    spaces.push({ id })
  }
  return spaces
}
