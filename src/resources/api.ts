/**
 * The API dispatcher: route → 404/405 → authorize (403: CSRF and
 * permission rules) → 415 → 406 → body (400/413) → operation →
 * representation. Runs after authentication and method override (spec §1.4
 * status precedence).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { contextOf, pathOnly } from '../middleware/context.js'
import type { Middleware, Next, RequestContext } from '../middleware/context.js'
import { HttpError } from '../middleware/problem.js'
import { matchContentType, readBody } from '../middleware/body.js'
import { chooseMediaType } from '../middleware/negotiate.js'
import { sendCacheable } from '../middleware/security-headers.js'
import { compileRoutes, matchRoute, methodNotAllowed, unknownPath } from './router.js'
import type { CompiledRoute, Match } from './router.js'
import { API_ROUTES } from './routes.js'
import { apiRoot, Links } from './links.js'
import type { LinkOptions } from './links.js'
import { consumed, produced, FORM_TYPE, TEXT_TYPE } from './media-types.js'
import { serialize } from './representation.js'
import { serializedFor } from './representation-cache.js'
import type { ApiServices, Operation, Reply } from './operation.js'

export interface ApiOptions extends LinkOptions {
  services: ApiServices
  /** Request body limit in bytes. */
  bodyLimit: number
  /** Runs the checks that answer 403 (CSRF, permission rules) for a matched route that needs authentication. */
  authorize: Middleware
}

const TEXT_TYPES: readonly string[] = ['text/plain']
const FORM_TYPES: readonly string[] = [FORM_TYPE]
/** Set by the method-override step when the override value was refused; reported after routing (404 first). */
export const OVERRIDE_ERROR = Symbol('cloudsync.overrideError')

function pathBelow(url: string, apiPath: string): string {
  return pathOnly(url).slice(apiPath.length)
}

function send(req: IncomingMessage, res: ServerResponse, reply: Reply, mediaType: string | undefined, links: Links | undefined): void {
  if (reply.status === 204) {
    res.statusCode = 204
    res.end()
    return
  }
  const isRead = req.method === 'GET' || req.method === 'HEAD'
  if ('stream' in reply) {
    res.statusCode = 200
    res.setHeader('Content-Type', TEXT_TYPE)
    res.setHeader('Cache-Control', 'no-store')
    if (req.method === 'HEAD') {
      (reply.stream as unknown as { destroy?: () => void }).destroy?.()
      res.end()
      return
    }
    reply.stream.on('error', () => res.destroy())
    reply.stream.pipe(res)
    return
  }
  if ('text' in reply) {
    sendCacheable(req, res, reply.text, TEXT_TYPE, 200)
    return
  }
  if (reply.location !== undefined) res.setHeader('Location', reply.location)
  if (reply.contentLocation !== undefined) res.setHeader('Content-Location', reply.contentLocation)
  if (isRead && reply.source !== undefined && links !== undefined) {
    const body = reply.body
    const { text, etag } = serializedFor(reply.source, mediaType!, links.key, () => serialize(body, mediaType!))
    sendCacheable(req, res, text, mediaType!, reply.status, etag)
    return
  }
  const text = serialize(reply.body, mediaType!)
  if (isRead) {
    sendCacheable(req, res, text, mediaType!, reply.status)
    return
  }
  res.statusCode = reply.status
  res.setHeader('Content-Type', mediaType!)
  res.setHeader('Content-Length', Buffer.byteLength(text))
  res.setHeader('Cache-Control', 'no-store')
  res.end(text)
}

/**
 * Route, check and run one API request. Everything up to the operation runs
 * synchronously (authorization rules usually answer at once), so a typical
 * read costs one promise: the operation's own.
 */
function dispatch(options: ApiOptions, routes: readonly CompiledRoute[], req: IncomingMessage, res: ServerResponse, next: Next): void {
  const ctx = contextOf(req)
  const path = pathBelow(req.url ?? '/', options.apiPath)
  const method = req.method ?? 'GET'
  const match = matchRoute(routes, path, method)
  if (match === undefined) return next(unknownPath())
  const overrideError = (ctx as Record<symbol, unknown>)[OVERRIDE_ERROR]
  if (overrideError !== undefined) return next(withAllow(overrideError, match.route.allow))
  if (method === 'OPTIONS') {
    res.statusCode = 200
    res.setHeader('Allow', match.route.allow)
    res.setHeader('Content-Length', 0)
    res.end()
    return
  }
  const operation: Operation | undefined = match.operation
  if (operation === undefined) return next(methodNotAllowed(match.route, method))
  if (match.route.open) return run(options, req, res, ctx, match, operation, method, next)
  options.authorize(req, res, (err?: unknown) => {
    if (err) return next(err)
    run(options, req, res, ctx, match, operation, method, next)
  })
}

/** A refused override is a 405 like any other: RFC 9110 wants the route's methods in `Allow`. */
function withAllow(err: unknown, allow: string): unknown {
  if (!(err instanceof HttpError) || err.status !== 405 || err.headers.Allow !== undefined) return err
  return new HttpError(405, err.detail, { code: err.code, type: err.type, headers: { ...err.headers, Allow: allow } })
}

/** 415 → 406 → body (400/413) → operation → representation (spec §1.4 order). */
function run(options: ApiOptions, req: IncomingMessage, res: ServerResponse, ctx: RequestContext, match: Match, operation: Operation, method: string, next: Next): void {
  let pending: Promise<Reply>
  let mediaType: string | undefined
  let links: Links | undefined
  try {
    const hasBody = operation.consumes !== undefined && (method === 'POST' || method === 'PATCH')
    let bodyType: string | undefined
    if (hasBody) {
      bodyType = matchContentType(req, operation.consumes === 'form' ? FORM_TYPES : consumed(operation.consumes!))
    }
    if (operation.produces !== undefined) {
      const types = operation.produces === 'text' ? TEXT_TYPES : produced(operation.produces)
      mediaType = chooseMediaType(req, types)
      if (mediaType === undefined) {
        throw new HttpError(406, `This resource can only produce ${types.join(', ')}; send a matching Accept header or a .json/.xml suffix.`, { code: 'not_acceptable' })
      }
    }
    const call = (body: unknown): Promise<Reply> => {
      links = new Links(apiRoot(req, ctx.mountPath ?? '', options), ctx.format?.suffix ?? '')
      return operation.run({ req, res, params: match.params, user: ctx.user, body, links, services: options.services })
    }
    if (hasBody) {
      // Forms parse to an object of strings, like JSON and XML bodies.
      pending = readBody(req, bodyType!, { limit: options.bodyLimit }).then(call)
    } else {
      pending = call(undefined)
    }
  } catch (err) {
    next(err)
    return
  }
  pending.then((reply) => {
    try {
      send(req, res, reply, mediaType, links)
    } catch (err) {
      next(err)
    }
  }, next)
}

/** The API handler: mount after authentication; errors go to `next(err)`. */
export function apiHandler(options: ApiOptions): Middleware {
  const routes = compileRoutes(API_ROUTES)
  return function cloudsyncApi(req: IncomingMessage, res: ServerResponse, next: Next): void {
    dispatch(options, routes, req, res, next)
  }
}

/** Whether a path below the API root is open (needs no authentication). */
export function isOpenApiPath(path: string): boolean {
  return path === '/service'
}
