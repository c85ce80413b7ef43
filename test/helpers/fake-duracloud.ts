/**
 * A small in-memory DuraStore for connector tests: the item calls of the
 * DuraStore REST API (`HEAD`/`GET`/`PUT`/`DELETE {base}/{space}/{id}`) and the
 * space listing (`GET {base}/{space}?maxResults&marker&prefix`), all under
 * `storeID` and HTTP Basic. It records every request and can be told to fail
 * (or never answer) chosen ones.
 */
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface FakeItem {
  body: Buffer
  contentType: string
}

export interface RecordedRequest {
  method: string
  /** The raw request target path, as sent (still percent-encoded). */
  rawPath: string
  /** The decoded item id; `undefined` for the space listing. */
  id: string | undefined
  query: Record<string, string>
  authorization: string | undefined
  contentType: string | undefined
  contentMd5: string | undefined
  contentLength: string | undefined
  /** Bytes received with the request. */
  bodyLength: number
}

export interface FailRule {
  method?: string
  /** Exact id, or a test on it; `null` matches the space listing only. */
  id?: string | null | ((id: string) => boolean)
  /** Status to answer, or `'hang'` to never answer. */
  status: number | 'hang'
  /** How many matching requests fail (default 1; Infinity = all). */
  times?: number
}

export interface FakeDuraCloud {
  /** The DuraStore base URL, e.g. `http://127.0.0.1:1234/durastore`. */
  url: string
  items: Map<string, FakeItem>
  requests: RecordedRequest[]
  fail(rule: FailRule): void
  close(): Promise<void>
}

export interface FakeOptions {
  username?: string
  password?: string
  storeId?: string
  space?: string
  /** List the whole space whatever `prefix` asks (as a careless server or proxy might). */
  ignorePrefix?: boolean
}

export async function startFakeDuraCloud(options: FakeOptions = {}): Promise<FakeDuraCloud> {
  const username = options.username ?? 'alice'
  const password = options.password ?? 's3cret'
  const storeId = options.storeId ?? '0'
  const space = options.space ?? 'fedora'
  const items = new Map<string, FakeItem>()
  const requests: RecordedRequest[] = []
  const rules: Array<FailRule & { left: number }> = []
  const hanging = new Set<ServerResponse>()
  const spacePath = `/durastore/${encodeURIComponent(space)}`

  const failureFor = (method: string, id: string | undefined): number | 'hang' | undefined => {
    for (const rule of rules) {
      if (rule.left <= 0) continue
      if (rule.method !== undefined && rule.method !== method) continue
      if (rule.id === null && id !== undefined) continue
      if (typeof rule.id === 'string' && rule.id !== id) continue
      if (typeof rule.id === 'function' && (id === undefined || !rule.id(id))) continue
      rule.left--
      return rule.status
    }
    return undefined
  }

  const handle = (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
    const rawUrl = req.url ?? '/'
    const q = rawUrl.indexOf('?')
    const rawPath = q === -1 ? rawUrl : rawUrl.slice(0, q)
    const query = Object.fromEntries(new URLSearchParams(q === -1 ? '' : rawUrl.slice(q + 1)))
    const method = req.method ?? ''
    let id: string | undefined
    let inSpace = false
    if (rawPath === spacePath) inSpace = true
    else if (rawPath.startsWith(spacePath + '/')) {
      inSpace = true
      try {
        id = decodeURIComponent(rawPath.slice(spacePath.length + 1))
      } catch {
        id = rawPath.slice(spacePath.length + 1)
      }
    }
    requests.push({
      method,
      rawPath,
      id,
      query,
      authorization: req.headers.authorization,
      contentType: req.headers['content-type'],
      contentMd5: req.headers['content-md5'] as string | undefined,
      contentLength: req.headers['content-length'],
      bodyLength: body.length,
    })
    const send = (status: number, text = '', type = 'text/plain'): void => {
      res.writeHead(status, { 'Content-Type': type })
      res.end(method === 'HEAD' ? undefined : text)
    }
    const expected = `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="DuraStore"' })
      res.end()
      return
    }
    if (!inSpace) return send(404, 'no such space')
    if (query.storeID !== storeId) return send(400, 'Invalid storeID')
    const failure = failureFor(method, id)
    if (failure === 'hang') {
      hanging.add(res)
      return
    }
    if (failure !== undefined) return send(failure, 'injected failure')

    if (id === undefined) {
      if (method !== 'GET') return send(405)
      const max = Number(query.maxResults ?? '1000')
      const prefix = options.ignorePrefix === true ? '' : query.prefix ?? ''
      const marker = query.marker
      const ids = [...items.keys()].filter((k) => k.startsWith(prefix) && (marker === undefined || k > marker)).sort()
      const page = ids.slice(0, max)
      const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<space id="${escapeXml(space)}">\n` +
        page.map((k) => `  <item>${escapeXml(k)}</item>\n`).join('') + '</space>\n'
      return send(200, xml, 'application/xml')
    }
    switch (method) {
      case 'HEAD':
      case 'GET': {
        const item = items.get(id)
        if (item === undefined) return send(404, 'not found')
        res.writeHead(200, { 'Content-Type': item.contentType, 'Content-Length': String(item.body.length) })
        res.end(method === 'HEAD' ? undefined : item.body)
        return
      }
      case 'PUT': {
        const md5 = createHash('md5').update(body).digest('hex')
        if (req.headers['content-md5'] !== md5) return send(400, 'checksum mismatch')
        const existed = items.has(id)
        items.set(id, { body, contentType: req.headers['content-type'] ?? 'application/octet-stream' })
        return send(existed ? 200 : 201)
      }
      case 'DELETE':
        if (!items.delete(id)) return send(404, 'not found')
        return send(200)
      default:
        return send(405)
    }
  }

  const server = createServer((req, res) => {
    const parts: Buffer[] = []
    req.on('data', (c: Buffer) => parts.push(c))
    req.on('end', () => handle(req, res, Buffer.concat(parts)))
    req.on('error', () => res.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/durastore`,
    items,
    requests,
    fail(rule) {
      rules.push({ ...rule, left: rule.times ?? 1 })
    },
    async close() {
      for (const res of hanging) res.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

function escapeXml(value: string): string {
  return value.replace(/[&<>"]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&quot;'))
}
