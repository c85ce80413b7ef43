/**
 * The Fedora object-store connector (CloudSync spec §5.7.2): a Fedora 3.x
 * repository spoken to through its REST API.
 *
 * - Every request carries preemptive HTTP Basic credentials, built per
 *   request; redirects are not followed (they would carry the credentials
 *   elsewhere) and TLS is verified by the platform `fetch` [D5].
 * - `HEAD` answers other than 200 and 404 are errors, never "absent" [D47].
 * - Content is streamed both ways: a version's content goes from its source
 *   stream into the `multipart/form-data` upload without being buffered, and
 *   `readContent` hands out the response body as it arrives.
 * - Writes stage every managed version first, purge an object being
 *   overwritten only after that, right before the ingest [D43].
 * - Resource Index queries are asked for as streamed CSV tuples and parsed
 *   row by row, so enumeration memory does not grow with the result size;
 *   it stops as soon as the run is canceled [D28].
 * - PIDs, datastream ids and parameters are URL-encoded [D41].
 *
 * A version's content is asked for by its creation date (`asOfDateTime`),
 * which the connector remembers from the objects it read: the copy engine
 * reads an object and then the content of its versions.
 */
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { basicAuthorization, isHostAllowed, OUTBOUND_HOSTS_ENV } from '../../resources/outbound.js'
import type { OutboundPolicy } from '../../resources/outbound.js'
import { parseFoxml, serializeFoxml } from './foxml.js'
import type { FoxmlObject } from './foxml.js'
import { compilePidPattern, existingPids, isValidPid } from './pid.js'
import { exchange } from './remote-http.js'
import type { Exchange, ExchangeState, Failure } from './remote-http.js'
import { FirstColumnCsv } from './ri-csv.js'
import type { ContentSource, ObjectSetSpec, ObjectStoreConnector, WriteOptions, WriteOutcome } from './types.js'

export interface FedoraConnectorOptions {
  /** The Fedora base URL (`data.url`), e.g. `http://host:8080/fedora`; trailing `/` ignored. */
  url: string
  /** `data.username`, sent with every request (preemptive HTTP Basic). */
  username: string
  /** `data.password`. Never appears in messages. */
  password: string
  /**
   * How long (ms) a request may go without progress: until the answer's
   * headers arrive, and between two chunks of a streamed body. Default 60 000.
   */
  timeoutMs?: number
  /** The `fetch` to use. Default: the global `fetch` (TLS verified). */
  fetch?: typeof fetch
  /** Hosts a content redirect may lead to (the base URL is the caller's to check). Default: any. */
  outbound?: OutboundPolicy
}

/** Default {@link FedoraConnectorOptions.timeoutMs}. */
export const DEFAULT_FEDORA_TIMEOUT_MS = 60_000

/** The Resource Index query for every object (spec §5.6), used for pattern sets. */
export const ALL_OBJECTS_ITQL = 'select $o from <#ri> where $o <fedora-model:hasModel> <info:fedora/fedora-system:FedoraObject-3.0>'

/** The tuple format asked of the Resource Index: CSV streams and parses row by row. */
export const RI_TUPLE_FORMAT = 'CSV'

const FEDORA_PREFIX = 'info:fedora/'

/**
 * A connector for the Fedora repository at `options.url`.
 *
 * @example
 * const store = fedoraConnector({ url: 'http://localhost:8080/fedora', username: 'fedoraAdmin', password: 'secret' })
 * if (await store.exists('demo:1')) console.log(await store.readObject('demo:1'))
 */
export function fedoraConnector(options: FedoraConnectorOptions): ObjectStoreConnector {
  if (typeof options !== 'object' || options === null) throw new TypeError('fedoraConnector: options must be an object')
  const { url, username, password } = options
  if (typeof url !== 'string') throw new TypeError('fedoraConnector: option "url" must be an absolute http or https URL')
  let parsed: URL
  try {
    parsed = new URL(url.trim())
  } catch {
    throw new TypeError('fedoraConnector: option "url" must be an absolute http or https URL')
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new TypeError('fedoraConnector: option "url" must be an absolute http or https URL')
  if (parsed.username !== '' || parsed.password !== '') throw new TypeError('fedoraConnector: option "url" must not contain credentials')
  if (parsed.search !== '' || parsed.hash !== '') throw new TypeError('fedoraConnector: option "url" must not contain a query or fragment')
  if (typeof username !== 'string') throw new TypeError('fedoraConnector: option "username" must be a string')
  if (typeof password !== 'string') throw new TypeError('fedoraConnector: option "password" must be a string')
  const timeoutMs = options.timeoutMs ?? DEFAULT_FEDORA_TIMEOUT_MS
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0 && timeoutMs <= 2_147_483_647)) {
    throw new TypeError('fedoraConnector: option "timeoutMs" must be a positive number of milliseconds')
  }
  const fetchFn = options.fetch ?? globalThis.fetch
  if (typeof fetchFn !== 'function') throw new TypeError('fedoraConnector: option "fetch" must be a function')
  const base = parsed.href.replace(/\/+$/, '')
  return new FedoraStore(base, username, basicAuthorization(username, password), timeoutMs, fetchFn, options.outbound)
}

/** What a request sends. `path` is relative to the base URL and already encoded. */
interface Call {
  method: string
  path: string
  query?: URLSearchParams
  headers?: Record<string, string>
  /** A function is given `touch`, to call as the content it streams makes progress. */
  body?: string | URLSearchParams | AsyncIterable<Uint8Array> | ((touch: () => void) => AsyncIterable<Uint8Array>)
  /** Aborts the request (and its body) early; the caller decides what that means. */
  signal?: AbortSignal
  /** Where a followed redirect leads (`path` then names it in messages). */
  url?: URL
  /** Send no credentials: the request leaves the repository's origin. */
  anonymous?: boolean
}

/** Redirects followed for a datastream's content (a Redirect datastream points elsewhere). */
const MAX_CONTENT_REDIRECTS = 5

/** Objects whose version dates are remembered (a copy has a few in flight at a time). */
const REMEMBERED_OBJECTS = 64
/** Longest part of an error body quoted in a message. */
const MAX_QUOTED_BODY = 300

class FedoraStore implements ObjectStoreConnector {
  readonly description: string
  /** pid → (dsId NUL versionId → CREATED), most recently read last. */
  private readonly versionDates = new Map<string, Map<string, string | undefined>>()

  constructor(
    private readonly base: string,
    private readonly username: string,
    private readonly authorization: string,
    private readonly timeoutMs: number,
    private readonly fetchFn: typeof fetch,
    private readonly outbound: OutboundPolicy | undefined,
  ) {
    this.description = `Fedora store ${base}`
  }

  async exists(pid: string, signal?: AbortSignal): Promise<boolean> {
    if (!addressable(pid)) return false
    const call: Call = { method: 'HEAD', path: objectPath(pid), signal }
    const x = await this.send(call)
    await x.discard()
    if (x.response.status === 200) return true
    if (x.response.status === 404) return false
    throw this.statusError(call, x.response.status, '')
  }

  async readObject(pid: string): Promise<FoxmlObject | undefined> {
    if (!addressable(pid)) return undefined
    const call: Call = { method: 'GET', path: `${objectPath(pid)}/export`, query: new URLSearchParams({ context: 'migrate' }) }
    const text = await this.text(call, [200], [404])
    if (text === undefined) return undefined
    const obj = parseFoxml(text)
    if (obj === undefined) throw new Error(`Fedora at ${this.base} exported ${pid} as something that is not valid FOXML 1.1; check the object in Fedora.`)
    if (obj.pid !== pid) throw new Error(`Fedora at ${this.base} exported ${pid} with the PID ${obj.pid}; check the object in Fedora.`)
    this.remember(obj)
    return obj
  }

  async readContent(pid: string, dsId: string, versionId: string): Promise<Readable | undefined> {
    if (!addressable(pid)) return undefined
    const key = versionKey(dsId, versionId)
    let dates = this.recall(pid)
    if (dates === undefined || !dates.has(key)) {
      // Not read here yet, or changed since: its dates come with the export.
      if ((await this.readObject(pid)) === undefined) return undefined
      dates = this.recall(pid)
      if (dates === undefined || !dates.has(key)) return undefined
    }
    const created = dates.get(key)
    const asOf = created === undefined ? undefined : utcTimestamp(created)
    if (asOf === undefined) {
      throw new Error(
        `${pid} datastream ${dsId} version ${versionId} in Fedora at ${this.base} has ${created === undefined ? 'no' : `an unreadable (${created})`} creation date, ` +
          'so its content cannot be asked for; repair the object in Fedora or leave it out of the set.',
      )
    }
    const what = `${pid} datastream ${dsId} version ${versionId}`
    let call: Call = {
      method: 'GET',
      path: `${objectPath(pid)}/datastreams/${encodeURIComponent(dsId)}/content`,
      query: new URLSearchParams({ asOfDateTime: asOf }),
    }
    try {
      for (let hops = 0; ; hops++) {
        const x = await this.send(call)
        const { status } = x.response
        const location = x.response.headers.get('location')
        if (status >= 300 && status < 400 && location !== null && hops < MAX_CONTENT_REDIRECTS) {
          await x.discard()
          call = this.redirected(call, location, what)
          continue
        }
        if (status === 404 && hops === 0) {
          await x.discard()
          return undefined
        }
        if (status !== 200) throw this.statusError(call, status, await errorBody(x))
        return Readable.from(x.pieces(this.failing(call, `the content of ${what}`)), { objectMode: false })
      }
    } catch (err) {
      // Content the source cannot supply names the PID, datastream and version [D40].
      throw new Error(`${what}: ${(err as Error).message}`, { cause: err })
    }
  }

  /**
   * The request a content redirect leads to: a Redirect datastream's content
   * lives elsewhere, as Fedora's own clients find by following it.
   * Credentials go only to the repository's own origin, and another host must
   * pass the outbound policy.
   */
  private redirected(from: Call, location: string, what: string): Call {
    let url: URL
    try {
      url = new URL(location, from.url ?? `${this.base}/${from.path}`)
    } catch {
      throw new Error(`Fedora at ${this.base} redirected the content to ${JSON.stringify(location)}, which is not a URL; check the datastream's location in Fedora.`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new Error(`the content is at ${url.protocol}… (only http and https are fetched); check the datastream's location in Fedora.`)
    }
    if (this.outbound !== undefined && !isHostAllowed(url, this.outbound)) {
      throw new Error(`the content of ${what} is at ${url.hostname}, which this server may not contact; ask the administrator to add it to ${OUTBOUND_HOSTS_ENV}.`)
    }
    return { method: 'GET', path: url.href, url, anonymous: url.origin !== new URL(this.base).origin }
  }

  async writeObject(obj: FoxmlObject, contents: ContentSource, options: WriteOptions): Promise<WriteOutcome> {
    const pid = obj.pid
    const existed = await this.exists(pid)
    if (existed && !options.overwrite) return 'skipped'
    // Every managed version is staged before anything changes in Fedora.
    const staged = new Map<string, string>()
    for (const ds of obj.datastreams) {
      if (ds.controlGroup !== 'M') continue
      for (const v of ds.versions) {
        const source = await contents(ds.id, v.id)
        staged.set(versionKey(ds.id, v.id), await this.upload(source, v.mimeType, `${pid} datastream ${ds.id} version ${v.id}`))
      }
    }
    const foxml = serializeFoxml(obj, {
      managedLocation: (dsId, versionId) => ({ type: 'URL', ref: staged.get(versionKey(dsId, versionId))! }),
    })
    if (existed) await this.text({ method: 'DELETE', path: objectPath(pid) }, [200, 204])
    await this.text({ method: 'POST', path: objectPath(pid), headers: { 'Content-Type': 'text/xml' }, body: foxml }, 'success')
    return existed ? 'replaced' : 'new'
  }

  async *enumerate(set: ObjectSetSpec, signal: AbortSignal): AsyncGenerator<string> {
    if (set.type === 'pidList') {
      yield* existingPids(set.pids, (pid, abort) => this.exists(pid, abort), signal)
      return
    }
    if (set.type === 'pidPattern') {
      const matches = compilePidPattern(set.pattern)
      for await (const pid of this.queryPids('itql', ALL_OBJECTS_ITQL, signal)) {
        if (isValidPid(pid) && matches(pid)) yield pid
      }
      return
    }
    yield* this.queryPids(set.queryType === 'iTQL' ? 'itql' : 'sparql', set.queryText, signal)
  }

  /** The PIDs in the first column of a tuple query's rows (`info:fedora/<pid>`; other rows skipped [D39]). */
  private async *queryPids(lang: 'itql' | 'sparql', query: string, signal: AbortSignal): AsyncGenerator<string> {
    if (signal.aborted) return
    const form = new URLSearchParams({ type: 'tuples', lang, format: RI_TUPLE_FORMAT, stream: 'on', query })
    const call: Call = { method: 'POST', path: 'risearch', body: form, signal }
    let x: Exchange
    try {
      x = await this.send(call)
    } catch (err) {
      if (signal.aborted) return
      throw err
    }
    if (x.response.status !== 200) throw this.statusError(call, x.response.status, await errorBody(x))
    const csv = new FirstColumnCsv()
    const decoder = new TextDecoder('utf-8')
    const rows: string[] = []
    let header = true
    try {
      for await (const chunk of x.pieces(this.failing(call, 'the query results'))) {
        csv.push(decoder.decode(chunk, { stream: true }), rows)
        for (const value of rows) {
          if (header) header = false
          else if (value.startsWith(FEDORA_PREFIX) && value.length > FEDORA_PREFIX.length) yield value.slice(FEDORA_PREFIX.length)
          if (signal.aborted) return
        }
        rows.length = 0
      }
      csv.push(decoder.decode(), rows)
      csv.end(rows)
      for (const value of rows) {
        if (header) header = false
        else if (value.startsWith(FEDORA_PREFIX) && value.length > FEDORA_PREFIX.length) yield value.slice(FEDORA_PREFIX.length)
        if (signal.aborted) return
      }
    } catch (err) {
      if (signal.aborted) return
      throw err
    }
  }

  /** Stage one version's content; its temporary URI. */
  private async upload(source: Readable, mimeType: string | undefined, what: string): Promise<string> {
    const boundary = `----cloudsync${randomBytes(16).toString('hex')}`
    const type = mimeType !== undefined && /^[\x21-\x7e]+\/[\x21-\x7e]+$/.test(mimeType) ? mimeType : 'application/octet-stream'
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="content"\r\nContent-Type: ${type}\r\n\r\n`,
      'utf8',
    )
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`, 'utf8')
    // A failure of the source is the error to report, not the broken upload it causes.
    let sourceError: unknown
    async function* body(touch: () => void): AsyncGenerator<Uint8Array> {
      yield head
      try {
        for await (const chunk of source) {
          touch()
          yield typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : (chunk as Uint8Array)
        }
      } catch (err) {
        sourceError = err
        throw err
      }
      yield tail
    }
    const call: Call = { method: 'POST', path: 'upload', headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` }, body }
    let text: string | undefined
    try {
      text = await this.text(call, 'success')
    } catch (err) {
      if (sourceError !== undefined) throw sourceError
      throw err
    } finally {
      source.destroy()
    }
    const uri = (text ?? '').trim()
    if (uri === '' || /\s/.test(uri)) {
      throw new Error(`Fedora at ${this.base} accepted the content of ${what} but did not answer with its temporary URI; check that the URL is a Fedora 3.x base URL.`)
    }
    return uri
  }

  /**
   * Send `call` and read its whole answer as text: `ok` statuses (or any
   * 2xx for `'success'`) give the text, `absent` ones `undefined`, anything
   * else is an error.
   */
  private async text(call: Call, ok: number[] | 'success', absent: number[] = []): Promise<string | undefined> {
    const x = await this.send(call)
    const status = x.response.status
    if (absent.includes(status)) {
      await x.discard()
      return undefined
    }
    if (ok === 'success' ? status < 200 || status > 299 : !ok.includes(status)) throw this.statusError(call, status, await errorBody(x))
    return x.text(Infinity, this.failing(call, 'its answer'))
  }

  /** Start a request; resolves when the answer's headers are in. */
  private async send(call: Call): Promise<Exchange> {
    const url = call.url ?? new URL(`${this.base}/${call.path}`)
    if (call.url === undefined && call.query !== undefined) url.search = call.query.toString()
    const headers: Record<string, string> = { ...(call.anonymous === true ? {} : { Authorization: this.authorization }), ...call.headers }
    const init = { method: call.method, headers, body: call.body }
    return exchange(this.fetchFn, url, init, { timeoutMs: this.timeoutMs, signal: call.signal, fail: this.failing(call) })
  }

  private statusError(call: Call, status: number, detail: string): Error {
    const said = detail === '' ? '' : ` (Fedora said: ${detail})`
    const who = call.url === undefined ? `Fedora at ${this.base}` : call.url.host
    return new Error(`${who} answered ${status} to ${call.method} ${call.path}${said}: ${this.hint(call, status)}.`)
  }

  private hint(call: Call, status: number): string {
    if (status === 401) return "check the store's username and password"
    if (status === 403) return `check that the Fedora user ${this.username} may do this (Fedora's access policies)`
    if (status >= 300 && status < 400 && (call.url !== undefined || call.path.endsWith('/content'))) {
      return `the content was redirected more than ${MAX_CONTENT_REDIRECTS} times or without a Location; check the datastream's location in Fedora`
    }
    if (call.url !== undefined) return "check the datastream's location in Fedora"  // a redirect target, not Fedora itself
    if (status >= 300 && status < 400) return "redirects are not followed; give the store's final Fedora base URL (check http versus https)"
    if (call.path === 'risearch') return "check the query, and that Fedora's Resource Index is enabled"
    if (status === 404) return "check that the store's URL is the Fedora base URL, such as http://host:8080/fedora"
    if (status >= 500) return "check Fedora's server log, or try again later"
    return "check the store's URL and Fedora's server log"
  }

  /** How a failed exchange (no answer, or a body broken off: `what` names the body) becomes an error saying what failed. */
  private failing(call: Call, what?: string): Failure {
    return (err, state) => this.failure(call, state, err, what)
  }

  private failure(call: Call, state: ExchangeState, err: unknown, what?: string): Error {
    const request = `${call.method} ${call.path}`
    if (state.timedOut) {
      const stalled = what === undefined ? `did not answer ${request}` : `stopped sending ${what} for ${request}`
      return new Error(`Fedora at ${this.base} ${stalled} within ${seconds(this.timeoutMs)}; try again later or check Fedora.`, { cause: err })
    }
    if (call.signal?.aborted) return new Error(`${request} to Fedora at ${this.base} was canceled.`, { cause: err })
    const cause = (err as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause
    const reason = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : err instanceof Error ? err.message : String(err)
    const failed = what === undefined ? `could not be reached for ${request}` : `broke off sending ${what} for ${request}`
    return new Error(`Fedora at ${this.base} ${failed} (${reason}); check the store's URL and that Fedora is running.`, { cause: err })
  }

  private remember(obj: FoxmlObject): void {
    const dates = new Map<string, string | undefined>()
    for (const ds of obj.datastreams) for (const v of ds.versions) dates.set(versionKey(ds.id, v.id), v.created)
    this.versionDates.delete(obj.pid)
    this.versionDates.set(obj.pid, dates)
    if (this.versionDates.size > REMEMBERED_OBJECTS) this.versionDates.delete(this.versionDates.keys().next().value!)
  }

  private recall(pid: string): Map<string, string | undefined> | undefined {
    return this.versionDates.get(pid)
  }
}

/**
 * An xs:dateTime as the UTC `YYYY-MM-DDTHH:mm:ss.sssZ` that Fedora's
 * `asOfDateTime` takes; a value without a zone is UTC (as Fedora writes
 * them). `undefined` when it is not a date-time.
 *
 * @example
 * utcTimestamp('2011-11-02T15:15:30.1+01:00') // '2011-11-02T14:15:30.100Z'
 */
export function utcTimestamp(created: string): string | undefined {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$/.exec(created.trim())
  if (m === null) return undefined
  const [, y, mo, d, h, mi, s, fraction, zone] = m
  const ms = fraction === undefined ? 0 : Number(fraction.slice(0, 3).padEnd(3, '0'))
  let time = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms)
  if (zone !== undefined && zone !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1
    time -= sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60_000
  }
  const date = new Date(time)
  if (Number.isNaN(time) || date.getUTCFullYear() < 1 || date.getUTCFullYear() > 9999) return undefined
  return date.toISOString()
}

/**
 * Whether a PID can name an object in a URL: `.` and `..` stay unencoded and
 * URL resolution would turn them into another resource (no PID is either).
 */
function addressable(pid: string): boolean {
  return pid !== '.' && pid !== '..'
}

function objectPath(pid: string): string {
  return `objects/${encodeURIComponent(pid)}`
}

function versionKey(dsId: string, versionId: string): string {
  return `${dsId}\u0000${versionId}`
}

function seconds(ms: number): string {
  const s = Math.ceil(ms / 1000)
  return s === 1 ? '1 second' : `${s} seconds`
}

/** The start of an error answer's text, on one line, for a message (read within the same time limit). */
async function errorBody(x: Exchange): Promise<string> {
  let text = ''
  try {
    for await (const piece of x.pieces()) {
      text += Buffer.from(piece).toString('utf8')
      if (text.length >= MAX_QUOTED_BODY * 4) break
    }
  } catch {
    // The status says enough.
  }
  const line = text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim()
  return line.length > MAX_QUOTED_BODY ? `${line.slice(0, MAX_QUOTED_BODY)}…` : line
}
