/**
 * problem — `HttpError` and one error handler that renders every failure as an
 * RFC 9457 problem document.
 *
 * The representation is negotiated (CloudSync spec §1.4):
 * `application/problem+json` when the request's recorded suffix is `.json` or
 * the client accepts JSON, `application/problem+xml` for `.xml` or an
 * XML-accepting client, otherwise `text/plain; charset=UTF-8`.
 * Stack traces never leave the process; 5xx errors are logged and answered
 * with a generic detail.
 */
import { STATUS_CODES } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { contextOf } from './context.js'
import type { ErrorMiddleware, Next } from './context.js'

export interface HttpErrorOptions {
  /** A stable machine-readable code, e.g. `method_not_allowed`. */
  code?: string
  /** RFC 9457 `type` URI; defaults to `about:blank`. */
  type?: string
  /** Headers to send with the problem (e.g. `Allow`, `Retry-After`). */
  headers?: Record<string, string | number | string[]>
  /** The underlying error, kept for logging only. */
  cause?: unknown
}

/** An error that knows its HTTP status. Thrown or passed to `next(err)`. */
export class HttpError extends Error {
  readonly status: number
  readonly code: string
  readonly type: string
  readonly headers: Record<string, string | number | string[]>
  /** Human-readable, safe to show: one sentence saying what to do next. */
  readonly detail: string

  constructor(status: number, detail: string, options: HttpErrorOptions = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'HttpError'
    this.status = Number.isInteger(status) && status >= 400 && status <= 599 ? status : 500
    this.detail = detail
    this.code = options.code ?? defaultCode(this.status)
    this.type = options.type ?? 'about:blank'
    this.headers = options.headers ?? {}
  }
}

function defaultCode(status: number): string {
  return (STATUS_CODES[status] ?? 'error').toLowerCase().replace(/[^a-z0-9]+/g, '_')
}

/** The members of a problem document. */
export interface ProblemDocument {
  type: string
  title: string
  status: number
  detail: string
  instance: string
}

export type ProblemFormat = 'json' | 'xml' | 'text'

export interface ProblemHandlerOptions {
  /** Called for every 5xx (and non-HttpError) failure. Default: `console.error`. */
  log?: (err: unknown, req: IncomingMessage) => void
  /** Detail shown for 5xx errors. Default: a generic sentence. */
  internalDetail?: string
}

const XML_NAMESPACE = 'urn:ietf:rfc:7807'

/** Whether an `Accept` header value accepts JSON (spec §1.4). */
export function acceptsJson(accept: string | undefined): boolean {
  return acceptsFamily(accept, 'json')
}

/** Whether an `Accept` header value accepts XML (spec §1.4). */
export function acceptsXml(accept: string | undefined): boolean {
  return acceptsFamily(accept, 'xml')
}

function acceptsFamily(accept: string | undefined, family: 'json' | 'xml'): boolean {
  if (accept === undefined || accept.trim() === '') return family === 'json'
  for (const part of accept.split(',')) {
    const [rangeRaw, ...params] = part.split(';')
    const range = rangeRaw!.trim().toLowerCase()
    if (params.some((p) => /^\s*q\s*=\s*0(\.0*)?\s*$/i.test(p))) continue
    if (range === '*/*') return family === 'json'
    if (range === `application/${family}` || range === `text/${family}`) return true
    if (range.endsWith(`+${family}`)) return true
  }
  return false
}

/** Pick the problem representation for a request. */
export function problemFormat(req: IncomingMessage): ProblemFormat {
  const suffix = contextOf(req).format?.suffix
  if (suffix === '.json') return 'json'
  if (suffix === '.xml') return 'xml'
  const accept = req.headers.accept
  if (acceptsJson(accept)) return 'json'
  if (acceptsXml(accept)) return 'xml'
  return 'text'
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`)
    // Characters XML 1.0 cannot carry at all are dropped rather than echoed.
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
}

/** Serialize a problem document in the given format. */
export function renderProblem(problem: ProblemDocument, format: ProblemFormat): { type: string; body: string } {
  if (format === 'json') {
    return { type: 'application/problem+json', body: JSON.stringify(problem) }
  }
  if (format === 'xml') {
    const members = (['type', 'title', 'status', 'detail', 'instance'] as const)
      .map((k) => `<${k}>${escapeXml(String(problem[k]))}</${k}>`).join('')
    return {
      type: 'application/problem+xml',
      body: `<?xml version="1.0" encoding="UTF-8"?><problem xmlns="${XML_NAMESPACE}">${members}</problem>`
    }
  }
  return {
    type: 'text/plain; charset=UTF-8',
    body: `${problem.status} ${problem.title}: ${problem.detail}\n`
  }
}

/** The request path without query, suitable for `instance`; control characters removed. */
function instanceOf(req: IncomingMessage): string {
  const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/'
  const path = url.split('?')[0] ?? '/'
  // Only a relative reference is echoed; anything odd is percent-encoded.
  return path.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/g, (c) => encodeURIComponent(c))
}

/** Build the problem document for `err` as it will be sent for `req`. */
export function toProblem(err: unknown, req: IncomingMessage, internalDetail: string): { problem: ProblemDocument; headers: Record<string, string | number | string[]> } {
  const http = asHttpError(err)
  const status = http?.status ?? 500
  // Deliberate gateway answers (502, 503, 504) say what failed upstream; a 500 never says anything.
  const detail = http === undefined || status === 500 ? internalDetail : http.detail
  return {
    problem: {
      type: http?.type ?? 'about:blank',
      title: STATUS_CODES[status] ?? 'Error',
      status,
      detail,
      instance: instanceOf(req)
    },
    headers: http?.headers ?? {}
  }
}

/**
 * Recognize errors from this toolkit and the common `status`/`statusCode`
 * convention of other middleware (body parsers, http-errors).
 */
function asHttpError(err: unknown): HttpError | undefined {
  if (err instanceof HttpError) return err
  if (typeof err === 'object' && err !== null) {
    const e = err as { status?: unknown; statusCode?: unknown; expose?: unknown; message?: unknown }
    const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined
    if (status !== undefined && status >= 400 && status < 500) {
      // Only errors that declare themselves safe to show keep their message.
      const detail = e.expose === true && typeof e.message === 'string' ? e.message : (STATUS_CODES[status] ?? 'Request failed') + '.'
      return new HttpError(status, detail)
    }
  }
  return undefined
}

/** Send a problem document for `err` (no-op if headers are already sent). */
export function sendProblem(err: unknown, req: IncomingMessage, res: ServerResponse, internalDetail = 'The server could not complete the request; the failure has been logged. Try again later.'): void {
  const { problem, headers } = toProblem(err, req, internalDetail)
  const { type, body } = renderProblem(problem, problemFormat(req))
  if (res.headersSent) {
    res.destroy()
    return
  }
  for (const name of res.getHeaderNames()) {
    // Drop representation headers a handler may have set before failing.
    if (name === 'etag' || name === 'last-modified' || name === 'content-location' || name === 'location' || name === 'content-encoding' || name === 'content-disposition') res.removeHeader(name)
  }
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value)
  res.statusCode = problem.status
  res.setHeader('Content-Type', type)
  res.setHeader('Content-Length', Buffer.byteLength(body))
  res.setHeader('Cache-Control', 'no-store')
  res.setHeader('X-Content-Type-Options', 'nosniff')
  res.end(req.method === 'HEAD' ? undefined : body)
}

/**
 * The error-handling middleware: `app.use(problemHandler())` after every
 * other piece. Renders `HttpError`s as problem documents and turns anything
 * else into a logged, generic 500.
 *
 * @example
 * app.use(problemHandler({ log: (err) => logger.error(err) }))
 */
export function problemHandler(options: ProblemHandlerOptions = {}): ErrorMiddleware {
  if (options.log !== undefined && typeof options.log !== 'function') {
    throw new TypeError('problemHandler: option "log" must be a function')
  }
  if (options.internalDetail !== undefined && typeof options.internalDetail !== 'string') {
    throw new TypeError('problemHandler: option "internalDetail" must be a string')
  }
  const log = options.log ?? ((err: unknown) => console.error('cloudsync-kit: internal error', err))
  const internalDetail = options.internalDetail ?? 'The server could not complete the request; the failure has been logged. Try again later.'
  return function problemErrorHandler(err: unknown, req: IncomingMessage, res: ServerResponse, _next: Next): void {
    const http = asHttpError(err)
    if (http === undefined || http.status === 500) log(err, req)
    sendProblem(http ?? err, req, res, internalDetail)
  }
}

/** A 404 terminator: `app.use(notFound())` after the routes. */
export function notFound(detail = 'No resource exists at this path. Check the URL against the API documentation.') {
  return function notFoundHandler(_req: IncomingMessage, _res: ServerResponse, next: Next): void {
    next(new HttpError(404, detail, { code: 'not_found' }))
  }
}
