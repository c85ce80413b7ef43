/**
 * outbound — the policy every request the server itself makes to another
 * server follows (CloudSync spec §5.7.4, §4.8; defects D5, D6).
 *
 * - only absolute `http`/`https` URLs without embedded credentials;
 * - an optional allow-list of host names (`CLOUDSYNC_OUTBOUND_HOSTS`), so a
 *   user cannot make the server probe internal networks;
 * - a timeout covering connect, headers and body, and a response size cap;
 * - redirects are not followed (a redirect could leave the allow-list and
 *   would carry the credentials along);
 * - TLS is verified: the platform `fetch` verifies certificates and host
 *   names, and nothing here turns that off.
 *
 * Validation problems are the client's to fix (`HttpError` 400); upstream
 * failures are `HttpError` 502, never 401, which a browser client would take
 * for the end of its own session.
 */
import { HttpError } from '../middleware/problem.js'

/** How the server may talk to other servers. */
export interface OutboundPolicy {
  /**
   * Host names the server may contact; `undefined` means any host.
   * Entries are matched case-insensitively against the URL's host name:
   * `durastore.example.org` (any port), `durastore.example.org:8443` (that
   * port only), `*.duracloud.org` (any subdomain, not the domain itself),
   * `127.0.0.1`, `[::1]`. See {@link parseAllowedHosts} for the environment form.
   */
  allowedHosts?: readonly string[]
  /** Whole-request time limit in milliseconds (connect, headers and body). Default 10 000. */
  timeoutMs?: number
  /** Largest response body accepted, in bytes. Default 4 MiB. */
  maxResponseBytes?: number
  /** The `fetch` to use. Default: the global `fetch` (TLS verified). */
  fetch?: typeof fetch
}

/** Default {@link OutboundPolicy.timeoutMs}. */
export const DEFAULT_OUTBOUND_TIMEOUT_MS = 10_000
/** Default {@link OutboundPolicy.maxResponseBytes}. */
export const DEFAULT_OUTBOUND_MAX_BYTES = 4 * 1024 * 1024

/** The environment variable holding the allow-list. */
export const OUTBOUND_HOSTS_ENV = 'CLOUDSYNC_OUTBOUND_HOSTS'

interface HostRule {
  /** Normalized host name (lower case, punycode, IPv6 in brackets), without `*.`. */
  host: string
  /** Port the rule is limited to, or `undefined` for any port. */
  port: string | undefined
  /** `*.` rule: matches subdomains of `host` only. */
  wildcard: boolean
}

interface ResolvedPolicy {
  rules: HostRule[] | undefined
  timeoutMs: number
  maxBytes: number
  fetch: typeof fetch
}

// Policies are usually long-lived objects: resolve each one once.
const resolved = new WeakMap<OutboundPolicy, ResolvedPolicy>()

/**
 * Parse a comma-separated allow-list such as the value of
 * `CLOUDSYNC_OUTBOUND_HOSTS`. Unset or blank means "any host" (`undefined`).
 * Entries are trimmed; empty entries are ignored.
 *
 * @example
 * parseAllowedHosts('durastore.example.org, *.duracloud.org')
 * // → ['durastore.example.org', '*.duracloud.org']
 */
export function parseAllowedHosts(value: string | undefined): string[] | undefined {
  if (value === undefined || value.trim() === '') return undefined
  const hosts: string[] = []
  for (const part of value.split(',')) {
    const entry = part.trim()
    if (entry !== '') hosts.push(entry)
  }
  return hosts
}

/**
 * Build the outbound policy the server uses from its environment:
 * `CLOUDSYNC_OUTBOUND_HOSTS` gives the allow-list; everything else takes its
 * default.
 *
 * @example
 * const policy = outboundPolicyFromEnv()
 * await lookupProviderAccounts(params, policy)
 */
export function outboundPolicyFromEnv(env: Readonly<Record<string, string | undefined>> = process.env): OutboundPolicy {
  const allowedHosts = parseAllowedHosts(env[OUTBOUND_HOSTS_ENV])
  return allowedHosts === undefined ? {} : { allowedHosts }
}

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//
const AUTHORITY_END = /[/?#]/
const EXPLICIT_PORT = /:(\d{1,5})$/

function parseRule(entry: string): HostRule {
  let text = entry.trim().toLowerCase()
  const wildcard = text.startsWith('*.')
  if (wildcard) text = text.slice(2)
  // Accept a pasted URL as well as a bare host[:port].
  let url: URL
  try {
    url = new URL(text.includes('://') ? text : `http://${text}`)
  } catch {
    throw new TypeError(`outbound policy: "allowedHosts" entry ${JSON.stringify(entry)} is not a host name`)
  }
  if (url.hostname === '' || url.username !== '' || url.password !== '') {
    throw new TypeError(`outbound policy: "allowedHosts" entry ${JSON.stringify(entry)} is not a host name`)
  }
  // URL drops a default port (`host:443`), so read an explicit port from the text.
  const authority = text.replace(SCHEME, '').split(AUTHORITY_END, 1)[0] ?? ''
  const port = EXPLICIT_PORT.exec(authority)?.[1]
  return { host: url.hostname, port: port === undefined ? undefined : String(Number(port)), wildcard }
}

function defaultPort(protocol: string): string {
  return protocol === 'https:' ? '443' : '80'
}

function resolvePolicy(policy: OutboundPolicy): ResolvedPolicy {
  let r = resolved.get(policy)
  if (r !== undefined) return r
  if (typeof policy !== 'object' || policy === null) throw new TypeError('outbound policy must be an object')
  const { allowedHosts, timeoutMs, maxResponseBytes } = policy
  if (allowedHosts !== undefined && (!Array.isArray(allowedHosts) || allowedHosts.some((h) => typeof h !== 'string'))) {
    throw new TypeError('outbound policy: "allowedHosts" must be an array of host names')
  }
  if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs > 0 && timeoutMs <= 2_147_483_647)) {
    throw new TypeError('outbound policy: "timeoutMs" must be a positive number of milliseconds')
  }
  if (maxResponseBytes !== undefined && !(Number.isSafeInteger(maxResponseBytes) && maxResponseBytes > 0)) {
    throw new TypeError('outbound policy: "maxResponseBytes" must be a positive integer')
  }
  if (policy.fetch !== undefined && typeof policy.fetch !== 'function') {
    throw new TypeError('outbound policy: "fetch" must be a function')
  }
  r = {
    rules: allowedHosts?.map(parseRule),
    timeoutMs: timeoutMs ?? DEFAULT_OUTBOUND_TIMEOUT_MS,
    maxBytes: maxResponseBytes ?? DEFAULT_OUTBOUND_MAX_BYTES,
    fetch: policy.fetch ?? globalThis.fetch
  }
  resolved.set(policy, r)
  return r
}

/**
 * Whether the policy lets the server contact `url`. Throws `TypeError` for
 * a malformed policy.
 *
 * @example
 * isHostAllowed(new URL('https://a.duracloud.org/durastore'), { allowedHosts: ['*.duracloud.org'] }) // true
 */
export function isHostAllowed(url: URL, policy: OutboundPolicy): boolean {
  const rules = resolvePolicy(policy).rules
  if (rules === undefined) return true
  const host = url.hostname
  const port = url.port || defaultPort(url.protocol)
  for (const rule of rules) {
    if (rule.port !== undefined && rule.port !== port) continue
    if (rule.wildcard ? host.endsWith(`.${rule.host}`) : host === rule.host) return true
  }
  return false
}

/**
 * Check a user-supplied base URL against the policy and return it parsed.
 * Throws `HttpError` 400 (`invalid_url`, `host_not_allowed`) naming the
 * parameter, so the client knows what to fix.
 *
 * @example
 * const base = checkOutboundUrl(params.url, policy, 'url')
 */
export function checkOutboundUrl(raw: string, policy: OutboundPolicy, parameter = 'url'): URL {
  let url: URL | undefined
  try {
    url = new URL(raw.trim())
  } catch {
    url = undefined
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    throw new HttpError(400, `The "${parameter}" parameter must be an absolute http or https URL, such as https://host/durastore.`, { code: 'invalid_url' })
  }
  if (url.username !== '' || url.password !== '') {
    throw new HttpError(400, `The "${parameter}" parameter must not contain credentials; give them in the username and password parameters.`, { code: 'invalid_url' })
  }
  if (url.search !== '' || url.hash !== '') {
    throw new HttpError(400, `The "${parameter}" parameter must not contain a query or fragment; give the base URL, such as https://host/durastore.`, { code: 'invalid_url' })
  }
  if (!isHostAllowed(url, policy)) {
    throw new HttpError(400, `This server may not contact ${url.hostname}; ask the administrator to add it to ${OUTBOUND_HOSTS_ENV}.`, { code: 'host_not_allowed' })
  }
  return url
}

/**
 * The value of a preemptive HTTP Basic `Authorization` header (RFC 7617,
 * UTF-8). Built per request: credentials are never shared between requests.
 *
 * @example
 * headers.Authorization = basicAuthorization('alice', 's3cret')
 */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`
}

/** What {@link fetchText} reports about an upstream answer. */
export interface OutboundText {
  status: number
  contentType: string | undefined
  body: string
}

/**
 * `GET url` under the policy and return the body of a 200 answer as text.
 * Any other outcome throws `HttpError` 502 with a code
 * (`upstream_unreachable`, `upstream_timeout`, `upstream_status`,
 * `upstream_too_large`) and a detail naming `label` (e.g. "The DuraCloud
 * server"). The caller has already checked the URL with {@link checkOutboundUrl}.
 *
 * @example
 * const { body } = await fetchText(new URL('https://h/durastore/stores'), { Authorization }, policy, 'The DuraCloud server')
 */
export async function fetchText(url: URL, headers: Record<string, string>, policy: OutboundPolicy, label: string): Promise<OutboundText> {
  const p = resolvePolicy(policy)
  const signal = AbortSignal.timeout(p.timeoutMs)
  const where = `${label} at ${url.host}`
  let response: Response
  try {
    response = await p.fetch(url, { method: 'GET', headers, redirect: 'manual', signal })
  } catch (err) {
    throw upstreamFailure(err, signal, where, p.timeoutMs)
  }
  if (response.status !== 200) {
    await discard(response)
    throw new HttpError(502, statusDetail(where, response.status), { code: 'upstream_status' })
  }
  const declared = Number(response.headers.get('content-length'))
  if (declared > p.maxBytes) {
    await discard(response)
    throw tooLarge(where, p.maxBytes)
  }
  let body: string
  try {
    body = await readLimited(response, p.maxBytes, where)
  } catch (err) {
    if (err instanceof HttpError) throw err
    throw upstreamFailure(err, signal, where, p.timeoutMs)
  }
  return { status: response.status, contentType: response.headers.get('content-type') ?? undefined, body }
}

function statusDetail(where: string, status: number): string {
  if (status === 401 || status === 403) return `${where} refused the credentials (HTTP ${status}); check the user name and password.`
  if (status === 404) return `${where} has no such resource (HTTP 404); check that the URL is the DuraStore base URL, such as https://host/durastore.`
  if (status >= 300 && status < 400) return `${where} redirected the request (HTTP ${status}); give the final base URL, such as https://host/durastore.`
  return `${where} answered HTTP ${status}; check the URL or try again later.`
}

function tooLarge(where: string, max: number): HttpError {
  return new HttpError(502, `${where} sent a response larger than ${max} bytes; check the URL.`, { code: 'upstream_too_large' })
}

function upstreamFailure(err: unknown, signal: AbortSignal, where: string, timeoutMs: number): HttpError {
  if (signal.aborted) {
    return new HttpError(502, `${where} did not answer within ${Math.ceil(timeoutMs / 1000)} seconds; check the URL or try again later.`, { code: 'upstream_timeout', cause: err })
  }
  return new HttpError(502, `${where} could not be reached; check the URL and that the server is running.`, { code: 'upstream_unreachable', cause: err })
}

async function discard(response: Response): Promise<void> {
  try {
    await response.body?.cancel()
  } catch {
    // Nothing to release.
  }
}

async function readLimited(response: Response, max: number, where: string): Promise<string> {
  const body = response.body
  if (body === null) return ''
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.byteLength
    if (total > max) {
      await reader.cancel().catch(() => undefined)
      throw tooLarge(where, max)
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks, total).toString('utf8')
}
