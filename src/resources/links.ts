/**
 * Absolute links for API responses (spec §3.2): built from the request's
 * origin and mount point, or from a configured public URL, and carrying the
 * current `.json` / `.xml` suffix (spec §2.4).
 */
import type { IncomingMessage } from 'node:http'
import { HttpError } from '../middleware/problem.js'

export interface LinkOptions {
  /** `https://example.org/cs` — replaces origin and mount in every link. */
  publicUrl?: string
  /** Honour `X-Forwarded-Proto` / `X-Forwarded-Host` (only behind a trusted proxy). */
  trustProxy: boolean
  /** The API's path below the mount, e.g. `/api/rest`. */
  apiPath: string
}

// RFC 3986 host (reg-name or IP literal) with an optional port; anything else is refused.
const HOST_PATTERN = /^(?:[A-Za-z0-9\-._~%!$&'()*+,;=]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/

function firstValue(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header
  if (value === undefined) return undefined
  const comma = value.indexOf(',')
  return (comma === -1 ? value : value.slice(0, comma)).trim()
}

/** `scheme://host[:port]` of the request. Throws 400 for a malformed Host. */
export function requestOrigin(req: IncomingMessage, trustProxy: boolean): string {
  let scheme = (req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http'
  let host = req.headers.host
  if (trustProxy) {
    const proto = firstValue(req.headers['x-forwarded-proto'])
    if (proto === 'http' || proto === 'https') scheme = proto
    host = firstValue(req.headers['x-forwarded-host']) ?? host
  }
  if (host === undefined || host === '') {
    const address = req.socket.localAddress ?? '127.0.0.1'
    host = address.includes(':') ? `[${address}]:${req.socket.localPort}` : `${address}:${req.socket.localPort}`
  }
  if (!HOST_PATTERN.test(host)) {
    throw new HttpError(400, 'The Host header is not a valid host name; send the server\'s host and port.', { code: 'bad_host' })
  }
  return `${scheme}://${host}`
}

/** Builds the links of one response. */
export class Links {
  readonly api: string
  readonly suffix: string

  constructor(api: string, suffix: string) {
    this.api = api
    this.suffix = suffix
  }

  /** Identifies the links this object builds (same key, same links). */
  get key(): string {
    return this.api + ' ' + this.suffix
  }

  /** `{api}/{collection}/{id}{sfx}` */
  entity(collection: string, id: number | string): string {
    return `${this.api}/${collection}/${id}${this.suffix}`
  }

  /** `{api}/{path}{sfx}` */
  resource(path: string): string {
    return `${this.api}/${path}${this.suffix}`
  }

  /** Never suffixed [D19]. */
  logContent(id: number): string {
    return `${this.api}/taskLogs/${id}/content`
  }
}

/** The API root `{origin}{mount}{apiPath}` for this request. */
export function apiRoot(req: IncomingMessage, mountPath: string, options: LinkOptions): string {
  const base = options.publicUrl ?? `${requestOrigin(req, options.trustProxy)}${mountPath}`
  return `${base}${options.apiPath}`
}
