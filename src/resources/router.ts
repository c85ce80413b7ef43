/**
 * The API route table (spec §1.2, §1.3): which paths exist and which methods
 * each supports. Matching yields the operation or the 404 / 405 answer.
 */
import type { Operation } from './operation.js'
import { HttpError } from '../middleware/problem.js'

export type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE'

export interface Route {
  /** Matches the path below the API root, e.g. `/users/12`. Groups are the params. */
  pattern: RegExp
  /** Open routes need no authentication (only `service`). */
  open?: boolean
  methods: Partial<Record<Method, Operation>>
}

export interface CompiledRoute extends Route {
  /** Precomputed `Allow` header value. */
  allow: string
}

export interface Match {
  route: CompiledRoute
  operation: Operation | undefined
  params: string[]
}

export function compileRoutes(routes: readonly Route[]): CompiledRoute[] {
  return routes.map((route) => {
    const methods = Object.keys(route.methods) as Method[]
    const allow = ['OPTIONS', ...(methods.includes('GET') ? ['GET', 'HEAD'] : []), ...methods.filter((m) => m !== 'GET')]
    return { ...route, allow: allow.join(', ') }
  })
}

/** Find the route for `path`; undefined when none matches (404). */
export function matchRoute(routes: readonly CompiledRoute[], path: string, method: string): Match | undefined {
  for (const route of routes) {
    const m = route.pattern.exec(path)
    if (m === null) continue
    const effective = method === 'HEAD' ? 'GET' : method
    return { route, operation: route.methods[effective as Method], params: m.slice(1) }
  }
  return undefined
}

export function methodNotAllowed(route: CompiledRoute, method: string): HttpError {
  return new HttpError(405, `${method} is not supported here; use one of: ${route.allow}.`, {
    code: 'method_not_allowed',
    headers: { Allow: route.allow }
  })
}

export function unknownPath(): HttpError {
  return new HttpError(404, 'No API resource exists at this path; start from the service document (GET service) and follow its links.', { code: 'not_found' })
}
