/**
 * A small in-memory Fedora 3.x for tests: the REST calls the Fedora store
 * connector makes (spec §5.7.2), over real HTTP on 127.0.0.1.
 *
 * - `HEAD|DELETE|POST objects/{pid}`, `GET objects/{pid}/export`,
 *   `GET objects/{pid}/datastreams/{dsId}/content?asOfDateTime=…`,
 *   `POST upload` (multipart, part `file`, 202 + `uploaded://n`),
 *   `POST risearch` (tuples as CSV, the way Fedora's Trippi writes them:
 *   quoted heading, values quoted only when they hold a comma or quote).
 * - Every request must carry the configured Basic credentials (otherwise
 *   401 with a challenge), and is recorded.
 * - `fail()` makes matching requests answer a status (0 = never answer).
 * - Ingest behaves like Fedora: an existing PID is refused, managed versions
 *   must point at a staged upload (or carry inline content).
 */
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { EventEmitter } from 'node:events'
import { parseFoxml } from '../../src/backend/stores/foxml.js'

export interface SeenRequest {
  method: string
  /** The path as sent (still percent-encoded), without the query. */
  path: string
  query: URLSearchParams
  authorization: string | undefined
  contentType: string | undefined
  /** The body as text (uploads: only the headers of their `file` part). */
  body: string
}

export interface FailRule {
  method?: string
  /** Matched against the encoded path below the base (e.g. `objects/demo%3A1`). */
  path?: string | RegExp
  /** Status to answer; 0 = accept the request and never answer. */
  status: number
  body?: string
  /** A `Location` header to send with it (a redirect). */
  location?: string
  /** How many requests to fail (default: all). */
  times?: number
}

interface StoredVersion {
  versionId: string
  created: number
  mimeType: string
  data: Buffer
}

/** Hooks for tests: `upload-bytes` (bytes of the current upload received so far). */
export class FakeFedora extends EventEmitter {
  readonly requests: SeenRequest[] = []
  /** pid → FOXML as ingested. */
  readonly objects = new Map<string, string>()
  /** `pid NUL dsId` → versions. */
  readonly contents = new Map<string, StoredVersion[]>()
  /** Staged uploads not yet used by an ingest. */
  readonly uploads = new Map<string, Buffer>()
  readonly failures: FailRule[] = []
  /** Answer tuple queries other than the all-objects one: rows (first column values), or raw CSV text. */
  queryHandler: ((lang: string, query: string) => string[] | { raw: string } | undefined) | undefined
  /** Pause between query result rows (ms), to let a test cancel mid-way. */
  rowDelayMs = 0
  /** Whether a query answer was cut off by the client before it was complete. */
  queryAbandoned = false
  /** When set, content answers send their first half and then wait for this promise. */
  contentGate: Promise<void> | undefined
  private uploadSeq = 0
  private readonly held: ServerResponse[] = []
  url = ''

  private constructor(
    private readonly server: Server,
    private readonly prefix: string,
    private readonly expectedAuth: string,
  ) {
    super()
  }

  static async start(options: { username?: string; password?: string; prefix?: string } = {}): Promise<FakeFedora> {
    const username = options.username ?? 'fedoraAdmin'
    const password = options.password ?? 'fedoraPass'
    const prefix = options.prefix ?? '/fedora'
    let fake: FakeFedora | undefined
    const server = createServer((req, res) => {
      fake!.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' })
        res.end(String(err))
      })
    })
    fake = new FakeFedora(server, prefix, 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64'))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${prefix}`
    return fake
  }

  async close(): Promise<void> {
    for (const res of this.held) res.destroy()
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  fail(rule: FailRule): void {
    this.failures.push({ ...rule })
  }

  /** Put an object in the store directly, with content for its `M` versions (keyed `dsId+versionId`). */
  addObject(foxml: string, content: Record<string, Buffer | string> = {}): void {
    const obj = parseFoxml(foxml)
    if (obj === undefined) throw new Error('addObject: not FOXML')
    this.objects.set(obj.pid, foxml)
    for (const ds of obj.datastreams) {
      if (ds.controlGroup !== 'M') continue
      for (const v of ds.versions) {
        const data = content[`${ds.id}+${v.id}`]
        if (data !== undefined) this.putVersion(obj.pid, ds.id, v.id, v.created!, v.mimeType, Buffer.from(data))
      }
    }
  }

  /** Requests below the base, as `METHOD path`. */
  calls(): string[] {
    return this.requests.map((r) => `${r.method} ${r.path}`)
  }

  /** The stored content of a version, by its id. */
  content(pid: string, dsId: string, versionId: string): Buffer | undefined {
    return this.contents.get(`${pid}\u0000${dsId}`)?.find((v) => v.versionId === versionId)?.data
  }

  private putVersion(pid: string, dsId: string, versionId: string, created: string, mimeType: string | undefined, data: Buffer): void {
    const key = `${pid}\u0000${dsId}`
    const list = this.contents.get(key) ?? []
    list.push({ versionId, created: Date.parse(created), mimeType: mimeType ?? 'application/octet-stream', data })
    this.contents.set(key, list)
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake')
    if (!url.pathname.startsWith(this.prefix + '/')) return send(res, 404, 'no such path')
    const path = url.pathname.slice(this.prefix.length + 1)
    const method = req.method ?? 'GET'
    const contentType = req.headers['content-type']
    const isUpload = method === 'POST' && path === 'upload'
    const body = await readBody(req, isUpload ? (n) => this.emit('upload-bytes', n) : undefined)
    const seen: SeenRequest = {
      method,
      path,
      query: url.searchParams,
      authorization: req.headers.authorization,
      contentType,
      body: isUpload ? '' : body.toString('utf8'),
    }
    this.requests.push(seen)

    if (req.headers.authorization !== this.expectedAuth) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="fedora"', 'Content-Type': 'text/plain' })
      return void res.end('Unauthorized')
    }
    const rule = this.failures.find((f) => (f.method === undefined || f.method === method) && matches(f.path, path) && (f.times === undefined || f.times > 0))
    if (rule !== undefined) {
      if (rule.times !== undefined) rule.times--
      if (rule.status === 0) return void this.held.push(res)
      if (rule.location !== undefined) res.setHeader('Location', rule.location)
      return send(res, rule.status, rule.body ?? `fake failure ${rule.status}`)
    }

    if (isUpload) return this.upload(res, contentType, body, seen)
    if (method === 'POST' && path === 'risearch') return this.risearch(res, contentType, body)
    const m = /^objects\/([^/]+)(\/export|\/datastreams\/([^/]+)\/content)?$/.exec(path)
    if (m === null) return send(res, 404, 'no such resource')
    const pid = decodeURIComponent(m[1]!)
    const exists = this.objects.has(pid)
    if (m[2] === undefined) {
      if (method === 'HEAD' || method === 'GET') return send(res, exists ? 200 : 404, exists ? '' : `no object ${pid}`)
      if (method === 'DELETE') {
        if (!exists) return send(res, 404, `no object ${pid}`)
        this.objects.delete(pid)
        for (const key of [...this.contents.keys()]) if (key.startsWith(`${pid}\u0000`)) this.contents.delete(key)
        return send(res, 200, new Date().toISOString())
      }
      if (method === 'POST') return this.ingest(res, pid, contentType, body.toString('utf8'))
      return send(res, 405, 'method not allowed')
    }
    if (method !== 'GET') return send(res, 405, 'method not allowed')
    if (m[2] === '/export') {
      if (url.searchParams.get('context') !== 'migrate') return send(res, 400, 'expected context=migrate')
      if (!exists) return send(res, 404, `no object ${pid}`)
      res.writeHead(200, { 'Content-Type': 'text/xml; charset=UTF-8' })
      return void res.end(this.objects.get(pid))
    }
    return this.readContent(res, pid, decodeURIComponent(m[3]!), url.searchParams.get('asOfDateTime'))
  }

  private async readContent(res: ServerResponse, pid: string, dsId: string, asOf: string | null): Promise<void> {
    const versions = this.objects.has(pid) ? this.contents.get(`${pid}\u0000${dsId}`) : undefined
    if (versions === undefined) return send(res, 404, `no datastream ${dsId} in ${pid}`)
    // Fedora's asOfDateTime: the version current at that instant.
    const limit = asOf === null ? Infinity : Date.parse(asOf)
    if (Number.isNaN(limit)) return send(res, 400, 'bad asOfDateTime')
    let pick: StoredVersion | undefined
    for (const v of versions) if (v.created <= limit && (pick === undefined || v.created > pick.created)) pick = v
    if (pick === undefined) return send(res, 404, `no version of ${dsId} at ${asOf}`)
    res.writeHead(200, { 'Content-Type': pick.mimeType, 'Content-Length': String(pick.data.length) })
    const gate = this.contentGate
    if (gate === undefined) return void res.end(pick.data)
    const half = Math.floor(pick.data.length / 2)
    res.write(pick.data.subarray(0, half))
    await gate
    res.end(pick.data.subarray(half))
  }

  private upload(res: ServerResponse, contentType: string | undefined, body: Buffer, seen: SeenRequest): void {
    const boundary = /^multipart\/form-data;\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType ?? '')
    if (boundary === null) return send(res, 415, 'expected multipart/form-data')
    const delimiter = Buffer.from(`--${boundary[1] ?? boundary[2]}`)
    // Parts: between delimiters; each is CRLF headers CRLFCRLF data CRLF.
    let at = body.indexOf(delimiter)
    while (at !== -1) {
      const start = at + delimiter.length
      if (body.subarray(start, start + 2).toString() === '--') break
      const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), start)
      if (next === -1) break
      const part = body.subarray(start + 2, next)
      const split = part.indexOf('\r\n\r\n')
      const headers = part.subarray(0, split).toString('utf8')
      if (/content-disposition:\s*form-data;\s*name="file"/i.test(headers)) {
        seen.body = headers
        const uri = `uploaded://${++this.uploadSeq}`
        this.uploads.set(uri, Buffer.from(part.subarray(split + 4)))
        res.writeHead(202, { 'Content-Type': 'text/plain' })
        return void res.end(`${uri}\n`)
      }
      at = next + 2
    }
    send(res, 400, 'no part named file')
  }

  private ingest(res: ServerResponse, pid: string, contentType: string | undefined, text: string): void {
    if (!/^text\/xml\b/.test(contentType ?? '')) return send(res, 415, 'expected text/xml')
    const obj = parseFoxml(text)
    if (obj === undefined) return send(res, 400, 'ObjectValidityException: not FOXML 1.1')
    if (obj.pid !== pid) return send(res, 400, 'PID mismatch')
    if (this.objects.has(pid)) return send(res, 500, `ObjectExistsException: ${pid} already exists`)
    const taken: Array<{ dsId: string; versionId: string; created: string; mimeType: string | undefined; data: Buffer }> = []
    for (const ds of obj.datastreams) {
      if (ds.controlGroup !== 'M') continue
      for (const v of ds.versions) {
        const ref = v.contentLocation?.ref
        const data = ref !== undefined && v.contentLocation?.type === 'URL' ? this.uploads.get(ref) : v.binaryContent !== undefined ? Buffer.from(v.binaryContent, 'base64') : undefined
        if (data === undefined || v.created === undefined) return send(res, 500, `ObjectIntegrityException: no content for ${ds.id} ${v.id}`)
        taken.push({ dsId: ds.id, versionId: v.id, created: v.created, mimeType: v.mimeType, data })
      }
    }
    for (const t of taken) this.putVersion(pid, t.dsId, t.versionId, t.created, t.mimeType, t.data)
    for (const ds of obj.datastreams) for (const v of ds.versions) if (v.contentLocation !== undefined) this.uploads.delete(v.contentLocation.ref)
    this.objects.set(pid, text)
    res.writeHead(201, { 'Content-Type': 'text/plain', Location: `${this.url}/objects/${encodeURIComponent(pid)}` })
    res.end(pid)
  }

  private risearch(res: ServerResponse, contentType: string | undefined, body: Buffer): void {
    if (!/^application\/x-www-form-urlencoded\b/.test(contentType ?? '')) return send(res, 415, 'expected a form')
    const form = new URLSearchParams(body.toString('utf8'))
    const lang = form.get('lang') ?? ''
    const query = form.get('query') ?? ''
    if (form.get('type') !== 'tuples' || form.get('stream') !== 'on' || form.get('format') !== 'CSV' || !['itql', 'sparql'].includes(lang)) {
      return send(res, 400, 'unsupported risearch parameters')
    }
    let answer: string[] | { raw: string } | undefined
    if (lang === 'itql' && query === 'select $o from <#ri> where $o <fedora-model:hasModel> <info:fedora/fedora-system:FedoraObject-3.0>') {
      answer = [...this.objects.keys()].map((pid) => `info:fedora/${pid}`)
    } else {
      answer = this.queryHandler?.(lang, query)
    }
    if (answer === undefined) return send(res, 500, 'org.trippi.TrippiException: Error parsing query')
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=UTF-8' })
    if (!Array.isArray(answer)) return void res.end(answer.raw)
    const lines = ['"o"', ...answer.map((v) => (/[",]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v))]
    if (this.rowDelayMs === 0) return void res.end(lines.join('\n') + '\n')
    let i = 0
    const timer = setInterval(() => {
      if (i < lines.length) res.write(lines[i++] + '\n')
      else {
        clearInterval(timer)
        res.end()
      }
    }, this.rowDelayMs)
    res.on('close', () => {
      if (i < lines.length) this.queryAbandoned = true
      clearInterval(timer)
    })
  }
}

function matches(pattern: string | RegExp | undefined, path: string): boolean {
  if (pattern === undefined) return true
  return typeof pattern === 'string' ? pattern === path : pattern.test(path)
}

function send(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain' })
  res.end(text)
}

async function readBody(req: IncomingMessage, progress?: (bytes: number) => void): Promise<Buffer> {
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of req) {
    chunks.push(chunk as Buffer)
    total += (chunk as Buffer).length
    progress?.(total)
  }
  return Buffer.concat(chunks)
}
