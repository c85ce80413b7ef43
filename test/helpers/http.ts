/** A raw HTTP client for tests: exact methods, headers and bodies over loopback. */
import http from 'node:http'

export interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  text: string
  /** Parsed JSON body (throws if the body is not JSON). */
  json(): any
}

export interface RequestOptions {
  headers?: Record<string, string | string[]>
  body?: string | Buffer
  /** `[name, password]` for HTTP Basic. */
  basic?: [string, string]
  timeoutMs?: number
}

export function basicHeader(name: string, password: string): string {
  return 'Basic ' + Buffer.from(`${name}:${password}`).toString('base64')
}

export function request(base: string, method: string, path: string, options: RequestOptions = {}): Promise<Reply> {
  const url = new URL(path, base)
  const headers: Record<string, string | string[]> = { ...options.headers }
  if (options.basic !== undefined) headers.Authorization = basicHeader(...options.basic)
  if (options.body !== undefined && headers['Content-Length'] === undefined) headers['Content-Length'] = String(Buffer.byteLength(options.body))
  const target = { host: url.hostname, port: url.port, method, path: url.pathname + url.search, headers, agent: false }
  return exchange(target, options.timeoutMs, (req) => req.end(options.body))
}

/**
 * Send one request as `target` describes (the body written by `send`) and
 * collect the whole reply; fails after `timeoutMs` (default 30 s).
 */
export function exchange(target: http.RequestOptions, timeoutMs = 30_000, send: (req: http.ClientRequest) => void): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(target, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) })
      })
      res.on('error', reject)
    })
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout: ${target.method} ${target.path}`)))
    req.on('error', reject)
    send(req)
  })
}
