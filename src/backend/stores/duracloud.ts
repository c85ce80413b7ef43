/**
 * The DuraCloud object-store connector (CloudSync spec §5.7.3): objects and
 * datastream content kept as items of one DuraStore space.
 *
 * - Item ids: `{prefix}{pid}` holds the FOXML, `{prefix}{pid}+{dsId}+{versionId}`
 *   the content of one managed version; ids are percent-encoded per path
 *   segment in URLs (the prefix may contain `/`), query values always [D41].
 * - Every request carries `storeID` and preemptive HTTP Basic credentials,
 *   built per request; redirects are not followed (they would carry the
 *   credentials elsewhere); TLS is verified by the platform `fetch` [D5].
 * - Content is spooled (memory up to a small limit, then a temporary file)
 *   while its MD5 is computed: DuraStore wants `Content-MD5` before the body,
 *   the source stream can be read only once, and a retried `PUT` needs the
 *   body again. Memory stays flat whatever the content size.
 * - Content above `chunkSize` is stored in DuraCloud chunk format (chunks and
 *   a `chunksManifest`); reads fall back to the manifest and verify each chunk.
 * - Writes put content first and the FOXML last; a failed write deletes only
 *   the items it created, never one that existed before it [D30]. `PUT`s are
 *   retried with growing, capped pauses that a cancel interrupts [D42].
 * - `HEAD` answers other than 200/404 are errors, never "absent" [D47].
 */
import { createHash } from 'node:crypto'
import { tmpdir } from 'node:os'
import { Readable } from 'node:stream'
import { basicAuthorization } from '../../resources/outbound.js'
import { QUERY_UNSUPPORTED } from './filesystem.js'
import { parseFoxml, serializeFoxml } from './foxml.js'
import type { FoxmlObject } from './foxml.js'
import { compilePidPattern, existingPids, isValidPid } from './pid.js'
import type { ContentSource, ObjectSetSpec, ObjectStoreConnector, WriteOptions, WriteOutcome } from './types.js'
import { memoryBody, Spool } from './content-spool.js'
import type { Body } from './content-spool.js'
import { chunksManifestXml, parseChunksManifest, parseItemList } from './duracloud-xml.js'
import type { ManifestChunk } from './duracloud-xml.js'
import { exchange } from './remote-http.js'
import type { Exchange, ExchangeState } from './remote-http.js'

export interface DuracloudConnectorOptions {
  /** DuraStore base URL (`data.url`), e.g. `https://host/durastore`. */
  url: string
  /** `data.username`. */
  username: string
  /** `data.password`; never part of a message. */
  password: string
  /** DuraCloud store id (`data.providerId`), sent as `storeID` on every request. */
  providerId: string
  /** Space id (`data.space`). */
  space: string
  /** Content-id prefix (`data.prefix`); blank = none. */
  prefix?: string
  /**
   * Milliseconds a request may wait for the answer's headers, and for each
   * further piece of a body being sent or received. Default 60 000.
   */
  timeoutMs?: number
  /** The `fetch` to use. Default: the global `fetch` (TLS verified). */
  fetch?: typeof fetch
  /** Aborts requests in flight and interrupts `PUT` retries (a canceled run). */
  signal?: AbortSignal
  /** Items asked for per listing page (`maxResults`). Default 999. */
  pageSize?: number
  /** Content larger than this (bytes) is stored in chunks of this size. Default 1 073 741 824. */
  chunkSize?: number
  /** Retries of a failed `PUT` (network error, timeout, 408, 429, 5xx). Default 3. */
  putRetries?: number
  /** Pause before the first retry (ms); each further pause is 4 times longer. Default 1 000. */
  retryPauseMs?: number
  /** Longest pause between retries (ms). Default 10 000 (with the defaults: 1, 4 and 10 s). */
  retryMaxPauseMs?: number
  /** Directory for spooled content. Default the system temporary directory. */
  tempDir?: string
  /** Content up to this size (bytes) is spooled in memory instead of a file. Default 1 MiB. */
  memorySpoolBytes?: number
}

export const DEFAULT_DURACLOUD_TIMEOUT_MS = 60_000
export const DEFAULT_DURACLOUD_PAGE_SIZE = 999
export const DURACLOUD_CHUNK_SIZE = 1_073_741_824
const MANIFEST_SUFFIX = '.dura-manifest'
const CHUNK_INFIX = '.dura-chunk-'
/** DuraCloud numbers chunks with four digits. */
const MAX_CHUNKS = 10_000
/** Largest FOXML or listing page read into memory. */
const MAX_TEXT_BYTES = 256 * 1024 * 1024

/**
 * A connector for one DuraCloud space.
 *
 * @example
 * const store = duracloudConnector({ url: 'https://h/durastore', username: 'u', password: 'p', providerId: '0', space: 'fedora' })
 * if (await store.exists('demo:1')) console.log(await store.readObject('demo:1'))
 */
export function duracloudConnector(options: DuracloudConnectorOptions): ObjectStoreConnector {
  const o = options as Partial<DuracloudConnectorOptions> | undefined
  if (typeof o !== 'object' || o === null) throw new TypeError('duracloudConnector: options must be an object')
  let base: URL
  try {
    base = new URL(String(o.url))
  } catch {
    throw new TypeError('duracloudConnector: option "url" must be an absolute http or https URL')
  }
  if ((base.protocol !== 'http:' && base.protocol !== 'https:') || base.search !== '' || base.hash !== '') {
    throw new TypeError('duracloudConnector: option "url" must be an absolute http or https URL without query')
  }
  if (base.username !== '' || base.password !== '') throw new TypeError('duracloudConnector: option "url" must not contain credentials')
  for (const name of ['username', 'password', 'providerId', 'space'] as const) {
    if (typeof o[name] !== 'string') throw new TypeError(`duracloudConnector: option "${name}" must be a string`)
  }
  if (o.providerId!.trim() === '') throw new TypeError('duracloudConnector: option "providerId" must not be blank')
  if (o.space!.trim() === '') throw new TypeError('duracloudConnector: option "space" must not be blank')
  if (o.prefix !== undefined && typeof o.prefix !== 'string') throw new TypeError('duracloudConnector: option "prefix" must be a string')
  const positive = (name: keyof DuracloudConnectorOptions, value: unknown, fallback: number, min = 1): number => {
    if (value === undefined) return fallback
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
      throw new TypeError(`duracloudConnector: option "${name}" must be an integer of at least ${min}`)
    }
    return value
  }
  const timeoutMs = positive('timeoutMs', o.timeoutMs, DEFAULT_DURACLOUD_TIMEOUT_MS)
  if (timeoutMs > 2_147_483_647) throw new TypeError('duracloudConnector: option "timeoutMs" is too large')
  if (o.fetch !== undefined && typeof o.fetch !== 'function') throw new TypeError('duracloudConnector: option "fetch" must be a function')
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new TypeError('duracloudConnector: option "signal" must be an AbortSignal')
  if (o.tempDir !== undefined && typeof o.tempDir !== 'string') throw new TypeError('duracloudConnector: option "tempDir" must be a directory path')
  return new DuracloudStore({
    base: base.href.replace(/\/+$/, ''),
    username: o.username!,
    password: o.password!,
    providerId: o.providerId!,
    space: o.space!,
    prefix: o.prefix === undefined || o.prefix.trim() === '' ? '' : o.prefix,
    timeoutMs,
    fetch: o.fetch ?? globalThis.fetch,
    signal: o.signal,
    pageSize: positive('pageSize', o.pageSize, DEFAULT_DURACLOUD_PAGE_SIZE),
    chunkSize: positive('chunkSize', o.chunkSize, DURACLOUD_CHUNK_SIZE),
    // A short, capped budget [D42]: a store that stays down fails the run within seconds, not hours.
    putRetries: positive('putRetries', o.putRetries, 3, 0),
    retryPauseMs: positive('retryPauseMs', o.retryPauseMs, 1_000, 0),
    retryMaxPauseMs: positive('retryMaxPauseMs', o.retryMaxPauseMs, 10_000, 0),
    tempDir: o.tempDir ?? tmpdir(),
    memorySpoolBytes: positive('memorySpoolBytes', o.memorySpoolBytes, 1024 * 1024, 0),
  })
}

interface Settings {
  base: string
  username: string
  password: string
  providerId: string
  space: string
  prefix: string
  timeoutMs: number
  fetch: typeof fetch
  signal: AbortSignal | undefined
  pageSize: number
  chunkSize: number
  putRetries: number
  retryPauseMs: number
  retryMaxPauseMs: number
  tempDir: string
  memorySpoolBytes: number
}


interface RequestInit_ {
  method: 'GET' | 'HEAD' | 'PUT' | 'DELETE'
  /** Item id; undefined = the space itself. */
  id?: string
  query?: Record<string, string>
  headers?: Record<string, string>
  body?: Body
  signal?: AbortSignal
}

/** A failure worth another `PUT` attempt. */
class RetryableError extends Error {}

class DuracloudStore implements ObjectStoreConnector {
  readonly description: string
  private readonly space: string

  constructor(private readonly s: Settings) {
    this.space = encodeURIComponent(wellFormed(s.space))
    this.description = `DuraCloud store ${s.base} (space ${s.space}, store ${s.providerId})`
  }

  exists(pid: string, signal?: AbortSignal): Promise<boolean> {
    return this.itemExists(this.s.prefix + pid, signal)
  }

  async readObject(pid: string): Promise<FoxmlObject | undefined> {
    const id = this.s.prefix + pid
    const text = await this.getText(id)
    if (text === undefined) return undefined
    const obj = parseFoxml(text)
    if (obj === undefined) throw new Error(`The item ${id} in the ${this.description} is not valid FOXML 1.1; repair or remove it.`)
    if (obj.pid !== pid) throw new Error(`The item ${id} in the ${this.description} declares the PID ${obj.pid}; repair or remove it.`)
    return obj
  }

  async readContent(pid: string, dsId: string, versionId: string): Promise<Readable | undefined> {
    const id = this.contentId(pid, dsId, versionId)
    const a = await this.request({ method: 'GET', id })
    if (a.response.status === 200) return Readable.from(a.pieces())
    await a.discard()
    if (a.response.status !== 404) throw this.statusError('GET', id, a.response.status)
    const manifestId = id + MANIFEST_SUFFIX
    const text = await this.getText(manifestId)
    if (text === undefined) return undefined
    const manifest = parseChunksManifest(text)
    if (typeof manifest === 'string') throw new Error(`The chunk manifest ${manifestId} in the ${this.description} ${manifest}; repair or remove it.`)
    return Readable.from(this.chunks(manifestId, manifest))
  }

  /** The chunks of a manifest in index order, each checked against its size and MD5. */
  private async *chunks(manifestId: string, chunks: ManifestChunk[]): AsyncGenerator<Uint8Array> {
    for (const chunk of chunks) {
      const a = await this.request({ method: 'GET', id: this.chunkId(chunk.id) })
      if (a.response.status !== 200) {
        await a.discard()
        if (a.response.status === 404) throw new Error(`The chunk ${chunk.id} listed in ${manifestId} is missing from the ${this.description}; repair the content.`)
        throw this.statusError('GET', chunk.id, a.response.status)
      }
      const hash = createHash('md5')
      let size = 0
      for await (const piece of a.pieces()) {
        hash.update(piece)
        size += piece.byteLength
        yield piece
      }
      const md5 = hash.digest('hex')
      if (size !== chunk.size || (chunk.md5 !== '' && md5 !== chunk.md5.toLowerCase())) {
        throw new Error(`The chunk ${chunk.id} in the ${this.description} does not match ${manifestId} (size or MD5 differ); repair the content.`)
      }
    }
  }

  async writeObject(obj: FoxmlObject, contents: ContentSource, options: WriteOptions): Promise<WriteOutcome> {
    const pid = obj.pid
    const objectId = this.s.prefix + pid
    const existed = await this.exists(pid, this.s.signal)
    if (existed && !options.overwrite) return 'skipped'

    // Items this write created (not there before it): the only ones a failure may delete [D30].
    const created: string[] = []
    const written = new Set<string>()
    const put = async (id: string, body: Body, contentType: string, md5: string): Promise<void> => {
      // When replacing, an item already there (e.g. the same version's content) belongs to the old object too.
      const fresh = !existed || !(await this.itemExists(id, this.s.signal))
      await this.putWithRetries(id, body, contentType, md5, pid)
      written.add(id)
      if (fresh) created.push(id)
    }
    try {
      for (const ds of obj.datastreams) {
        if (ds.controlGroup !== 'M') continue
        for (const v of ds.versions) {
          this.checkCanceled(pid)
          const id = this.contentId(pid, ds.id, v.id)
          const spool = await Spool.fill(await contents(ds.id, v.id), this.s)
          try {
            const type = v.mimeType !== undefined && HEADER_VALUE.test(v.mimeType) ? v.mimeType : 'application/octet-stream'
            if (spool.size <= this.s.chunkSize) {
              await put(id, spool.body(0, spool.size), type, spool.md5)
            } else {
              await this.putChunked(id, spool, type, put, pid)
            }
          } finally {
            await spool.dispose()
          }
        }
      }
      this.checkCanceled(pid)
      const text = serializeFoxml(obj, { managedLocation: (dsId, versionId) => ({ type: 'INTERNAL_ID', ref: `${pid}+${dsId}+${versionId}` }) })
      const bytes = Buffer.from(text, 'utf8')
      // The object item is never in `created` when it existed: a failed replace keeps it.
      if (!existed) created.push(objectId)
      await this.putWithRetries(objectId, memoryBody(bytes), 'application/xml', md5Hex(bytes), pid)
    } catch (err) {
      await this.cleanup(created)
      throw err
    }
    if (existed) await this.removeStaleContent(pid, written)
    return existed ? 'replaced' : 'new'
  }

  /** Content above the chunk size: its chunks, then its manifest (DuraCloud chunk format). */
  private async putChunked(
    id: string,
    spool: Spool,
    contentType: string,
    put: (id: string, body: Body, contentType: string, md5: string) => Promise<void>,
    pid: string,
  ): Promise<void> {
    const count = spool.chunkMd5s.length
    if (count > MAX_CHUNKS) throw new Error(`The content ${id} needs ${count} chunks, more than DuraCloud's ${MAX_CHUNKS}; it cannot be copied to the ${this.description}.`)
    const entries: Array<{ id: string; index: number; size: number; md5: string }> = []
    for (let i = 0; i < count; i++) {
      this.checkCanceled(pid)
      const start = i * this.s.chunkSize
      const size = Math.min(this.s.chunkSize, spool.size - start)
      const chunkId = `${id}${CHUNK_INFIX}${String(i).padStart(4, '0')}`
      await put(chunkId, spool.body(start, size), 'application/octet-stream', spool.chunkMd5s[i]!)
      entries.push({ id: chunkId, index: i, size, md5: spool.chunkMd5s[i]! })
    }
    const manifest = Buffer.from(chunksManifestXml(id, contentType, spool.size, spool.md5, entries), 'utf8')
    await put(id + MANIFEST_SUFFIX, memoryBody(manifest), 'application/xml', md5Hex(manifest))
  }

  /** Whether an item is there now: 200 yes, 404 no, anything else an error [D47]. */
  private async itemExists(id: string, signal: AbortSignal | undefined): Promise<boolean> {
    const a = await this.request({ method: 'HEAD', id, signal })
    await a.discard()
    if (a.response.status === 200) return true
    if (a.response.status === 404) return false
    throw this.statusError('HEAD', id, a.response.status)
  }

  /** `PUT` with retries after transient failures; pauses grow and are capped, and a cancel ends them [D42]. */
  private async putWithRetries(id: string, body: Body, contentType: string, md5: string, pid: string): Promise<void> {
    let pause = this.s.retryPauseMs
    for (let attempt = 0; ; attempt++) {
      this.checkCanceled(pid)
      try {
        await this.putOnce(id, body, contentType, md5)
        return
      } catch (err) {
        if (!(err instanceof RetryableError) || attempt >= this.s.putRetries) {
          throw attempt > 0 && err instanceof Error ? new Error(`${err.message.replace(/\.$/, '')} (${attempt + 1} attempts).`, { cause: err }) : err
        }
      }
      await sleep(pause, this.s.signal)
      pause = Math.min(pause * 4, this.s.retryMaxPauseMs)
    }
  }

  private async putOnce(id: string, body: Body, contentType: string, md5: string): Promise<void> {
    let a: Exchange
    try {
      a = await this.request({
        method: 'PUT',
        id,
        headers: { 'Content-Type': contentType, 'Content-MD5': md5, 'Content-Length': String(body.length) },
        body,
        signal: this.s.signal,
      })
    } catch (err) {
      if (this.s.signal?.aborted) throw err
      throw new RetryableError((err as Error).message, { cause: err })
    }
    await a.discard()
    const status = a.response.status
    if (status >= 200 && status < 300) return
    const error = this.statusError('PUT', id, status)
    if (status === 408 || status === 429 || status >= 500) throw new RetryableError(error.message)
    throw error
  }

  /** Best effort: delete what a failed write created (the original error is what matters). */
  private async cleanup(ids: string[]): Promise<void> {
    for (const id of ids.reverse()) {
      try {
        // Not tied to the cancel signal: a canceled write still removes its leftovers.
        const a = await this.request({ method: 'DELETE', id })
        await a.discard()
      } catch {
        // Unreachable now: the item stays; it is invisible without its object.
      }
    }
  }

  /** After a replace: content items of the old object that the new one did not write (best effort). */
  private async removeStaleContent(pid: string, keep: Set<string>): Promise<void> {
    const stale: string[] = []
    try {
      const contentOf = this.s.prefix + pid + '+'
      for await (const id of this.listIds(contentOf, new AbortController().signal)) {
        // Only this object's content items: a server that ignores `prefix` lists the whole space.
        if (id.startsWith(contentOf) && !keep.has(id)) stale.push(id)
      }
    } catch {
      return
    }
    await this.cleanup(stale)
  }

  async *enumerate(set: ObjectSetSpec, signal: AbortSignal): AsyncGenerator<string> {
    if (set.type === 'query') throw new Error(QUERY_UNSUPPORTED)
    if (set.type === 'pidList') {
      yield* existingPids(set.pids, (pid, abort) => this.exists(pid, abort), signal)
      return
    }
    const matches = compilePidPattern(set.pattern)
    const prefix = this.s.prefix
    try {
      for await (const id of this.listIds(prefix, signal)) {
        if (signal.aborted) return
        if (!id.startsWith(prefix)) continue
        const pid = id.slice(prefix.length)
        if (pid.includes(CHUNK_INFIX) || pid.endsWith(MANIFEST_SUFFIX)) continue
        if (isValidPid(pid) && matches(pid)) yield pid
      }
    } catch (err) {
      if (signal.aborted) return
      throw err
    }
  }

  /** Every item id starting with `prefix`, one listing page at a time. */
  private async *listIds(prefix: string, signal: AbortSignal): AsyncGenerator<string> {
    let marker: string | undefined
    for (;;) {
      if (signal.aborted) return
      const query: Record<string, string> = { maxResults: String(this.s.pageSize) }
      if (marker !== undefined) query.marker = marker
      if (prefix !== '') query.prefix = prefix
      const a = await this.request({ method: 'GET', query, signal })
      if (a.response.status !== 200) {
        await a.discard()
        throw this.statusError('GET', undefined, a.response.status)
      }
      const ids = parseItemList(await this.readText(a, 'GET', undefined))
      if (ids === undefined) throw new Error(`The ${this.description} sent a space listing that is not valid XML; check the URL and space.`)
      for (const id of ids) {
        if (signal.aborted) return
        yield id
      }
      if (ids.length !== this.s.pageSize) return
      marker = ids[ids.length - 1]
    }
  }

  // ---- HTTP ---------------------------------------------------------------

  /**
   * A chunk id from a manifest as an item id: manifests written without the
   * store's prefix (as the original CloudSync wrote them) name chunks relative to it.
   */
  private chunkId(listed: string): string {
    return this.s.prefix === '' || listed.startsWith(this.s.prefix) ? listed : this.s.prefix + listed
  }

  private contentId(pid: string, dsId: string, versionId: string): string {
    return `${this.s.prefix}${pid}+${dsId}+${versionId}`
  }

  private urlOf(id: string | undefined, query: Record<string, string> = {}): string {
    let url = `${this.s.base}/${this.space}`
    if (id !== undefined) url += '/' + encodeItemId(id, this.s.prefix)
    url += `?storeID=${encodeURIComponent(wellFormed(this.s.providerId))}`
    for (const [name, value] of Object.entries(query)) url += `&${name}=${encodeURIComponent(wellFormed(value))}`
    return url
  }

  /** What a message calls a request target: the space, or space/id as sent. */
  private targetOf(id: string | undefined): string {
    return id === undefined ? this.space : `${this.space}/${encodeItemId(id, this.s.prefix)}`
  }

  /**
   * One request under the store's timeout: the headers must come within
   * `timeoutMs`, and so must every further piece of a body (in either
   * direction). Rejects for network failures, timeouts and cancels.
   */
  private async request(init: RequestInit_): Promise<Exchange> {
    // Before any timer: an id that cannot be addressed throws here.
    const url = this.urlOf(init.id, init.query)
    const target = `${init.method} ${this.targetOf(init.id)}`
    const headers: Record<string, string> = {
      Authorization: basicAuthorization(this.s.username, this.s.password),
      ...init.headers,
    }
    const body = init.body
    // Opened per request: a retried `PUT` sends the body again.
    const send = { method: init.method, headers, body: body === undefined ? undefined : (touch: () => void) => body.open(touch) }
    return exchange(this.s.fetch, url, send, { timeoutMs: this.s.timeoutMs, signal: init.signal, fail: (err, state) => this.explain(target, err, state) })
  }

  /** Why a request failed: canceled, timed out, or the error itself. */
  private explain(target: string, err: unknown, state: ExchangeState): Error {
    if (state.canceled) return canceled(`The request ${target} to the ${this.description} was canceled.`)
    if (state.timedOut) {
      return new Error(`The ${this.description} did not answer ${target} within ${Math.ceil(this.s.timeoutMs / 1000)} seconds; check the URL or try again later.`, { cause: err })
    }
    if (err instanceof Error && /^(The |DuraCloud )/.test(err.message)) return err
    const reason = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err)
    return new Error(`The ${this.description} could not be reached for ${target} (${reason}); check the URL and that the server is running.`, { cause: err })
  }

  private statusError(method: string, id: string | undefined, status: number): Error {
    const where = `DuraCloud at ${this.s.base} answered ${status} to ${method} ${this.targetOf(id)}`
    let hint: string
    if (status === 401 || status === 403) hint = "check the store's username and password, and that this user may use the space"
    else if (status === 404 && id === undefined) hint = `check that the space "${this.s.space}" exists in store ${this.s.providerId}`
    else if (status === 400) hint = `check the store's provider id (${this.s.providerId}) and space`
    else if (status >= 300 && status < 400) hint = "the server redirected the request; give the final DuraStore base URL as the store's url"
    else if (status === 409 && method === 'PUT') hint = 'the server refused the content (checksum mismatch or conflict); try again'
    else if (status >= 500) hint = 'the DuraCloud server failed; try again later'
    else hint = "check the store's URL, provider id and space"
    return new Error(`${where}: ${hint}.`)
  }

  /** An item's whole text, or `undefined` when it does not exist (404); other answers are errors. */
  private async getText(id: string): Promise<string | undefined> {
    const a = await this.request({ method: 'GET', id })
    if (a.response.status !== 200) {
      await a.discard()
      if (a.response.status === 404) return undefined
      throw this.statusError('GET', id, a.response.status)
    }
    return this.readText(a, 'GET', id)
  }

  private async readText(a: Exchange, method: string, id: string | undefined): Promise<string> {
    const text = await a.text(MAX_TEXT_BYTES)
    if (text === undefined) throw new Error(`The ${this.description} sent more than ${MAX_TEXT_BYTES} bytes for ${method} ${this.targetOf(id)}; check the URL.`)
    return text
  }

  private checkCanceled(pid: string): void {
    if (this.s.signal?.aborted) throw canceled(`The write of ${pid} to the ${this.description} was canceled.`)
  }
}

// ---- Helpers ----------------------------------------------------------------

/** A header value fetch accepts (visible ASCII and spaces). */
const HEADER_VALUE = /^[\x20-\x7e]+$/

function md5Hex(bytes: Uint8Array): string {
  return createHash('md5').update(bytes).digest('hex')
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/** `value` with lone surrogates replaced (they cannot be percent-encoded). */
function wellFormed(value: string): string {
  return value.replace(LONE_SURROGATE, '\uFFFD')
}

/**
 * An item id as URL path. The prefix keeps its `/` (DuraCloud ids use it as
 * a folder separator, e.g. a prefix `fedora/`); everything after it is
 * encoded whole, `/` included, so a PID always stays one path segment. An id
 * with a `.` or `..` segment is refused: URL resolution would remove it (even
 * percent-encoded) and address another item, or something outside the space.
 *
 * @example
 * encodeItemId('fedora/demo:1+DC+DC.0', 'fedora/') // 'fedora/demo%3A1%2BDC%2BDC.0'
 */
export function encodeItemId(id: string, prefix: string): string {
  const rest = prefix !== '' && id.startsWith(prefix) ? id.slice(prefix.length) : id
  const head = rest === id ? '' : wellFormed(prefix).split('/').map(encodeURIComponent).join('/')
  const path = head + encodeURIComponent(wellFormed(rest))
  for (const segment of path.split('/')) {
    if (segment === '.' || segment === '..') {
      throw new Error(`The id ${JSON.stringify(id)} cannot be used in a DuraStore URL (it has a "." or ".." path segment); leave this PID out or change the store's prefix.`)
    }
  }
  return path
}

function canceled(message: string): Error {
  const err = new Error(message)
  err.name = 'AbortError'
  return err
}

/** Wait `ms`, or less when `signal` aborts (then reject with an AbortError). */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(canceled('The write was canceled.'))
      return
    }
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(canceled('The write was canceled while waiting to retry.'))
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
