/**
 * authorize — declarative access rules: who may do what.
 *
 * Rules are tried in order against the effective method (after method
 * override) and the path of `req.url`; the first rule whose method and path
 * match decides. A refusal is a 403 problem with the rule's `detail`. When no
 * rule matches, `default` decides (`'allow'` unless configured).
 *
 * Path patterns are compiled once, when the factory runs: `'/users/:id'`
 * (each `:name` matches one non-empty segment; one trailing `/` is ignored)
 * or a RegExp (named groups become params).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { contextOf } from './context.js'
import type { AuthUser, Middleware, Next } from './context.js'
import { HttpError } from './problem.js'

/** One access rule. */
export interface AuthorizeRule {
  /** Method(s) the rule applies to (a GET rule also covers HEAD). Default: every method. */
  method?: string | string[]
  /** `'/users/:id'` style pattern, or a RegExp tested against the path. */
  path: string | RegExp
  /** Decide; `params` holds the decoded `:name` segments (or the RegExp's named groups). */
  allow(user: AuthUser | undefined, req: IncomingMessage, params: Record<string, string>): boolean | Promise<boolean>
  /** The refusal's detail sentence (say what the user can do instead). */
  detail?: string
}

/** Options of {@link authorize}. */
export interface AuthorizeOptions {
  rules: AuthorizeRule[]
  /** What happens when no rule matches. Default `'allow'`. */
  default?: 'allow' | 'deny'
}

interface CompiledRule {
  methods: ReadonlySet<string> | undefined
  pattern: RegExp
  names: readonly string[] | undefined
  allow: AuthorizeRule['allow']
  refusal: HttpError
}

const DEFAULT_DETAIL = 'You are not allowed to do this; ask an administrator if you need access.'
const NO_PARAMS: Record<string, string> = Object.freeze(Object.create(null)) as Record<string, string>

/**
 * Compile a `'/users/:id'` pattern to an anchored RegExp and its parameter names.
 *
 * @example
 * compilePattern('/users/:id') // { pattern: /^\/users\/([^/]+)\/?$/, names: ['id'] }
 */
export function compilePattern(path: string): { pattern: RegExp; names: string[] } {
  const names: string[] = []
  const body = path.replace(/\/+$/, '').split('/').map((segment) => {
    if (segment.startsWith(':')) {
      const name = segment.slice(1)
      if (!/^[A-Za-z_$][\w$]*$/.test(name)) throw new TypeError(`authorize: parameter ":${name}" in path "${path}" must be an identifier`)
      names.push(name)
      return '([^/]+)'
    }
    return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  }).join('/')
  return { pattern: new RegExp(`^${body}/?$`), names }
}

/**
 * Create the authorization middleware. Mount after `authenticate()`.
 *
 * @example
 * import { authorize } from 'cloudsync-kit/authorize'
 *
 * app.use(authorize({
 *   rules: [
 *     { method: ['POST', 'DELETE'], path: '/users/:id', allow: (user) => user?.admin === true,
 *       detail: 'Only administrators can manage users.' },
 *     { method: 'PATCH', path: '/users/:id', allow: (user, _req, { id }) => user?.admin === true || String(user?.id) === id }
 *   ]
 * }))
 */
export function authorize(options: AuthorizeOptions): Middleware {
  if (typeof options !== 'object' || options === null || !Array.isArray(options.rules)) {
    throw new TypeError('authorize: option "rules" must be an array of { method?, path, allow, detail? }')
  }
  const fallback = options.default ?? 'allow'
  if (fallback !== 'allow' && fallback !== 'deny') throw new TypeError('authorize: option "default" must be "allow" or "deny"')
  const rules = options.rules.map(compileRule)
  const denied = new HttpError(403, DEFAULT_DETAIL, { code: 'forbidden' })

  return function authorizeMiddleware(req: IncomingMessage, _res: ServerResponse, next: Next): void {
    const method = req.method ?? 'GET'
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    for (const rule of rules) {
      if (rule.methods !== undefined && !rule.methods.has(method)) continue
      const match = rule.pattern.exec(path)
      if (match === null) continue
      let verdict: boolean | Promise<boolean>
      try {
        verdict = rule.allow(contextOf(req).user, req, paramsOf(match, rule.names))
      } catch (err) {
        next(err)
        return
      }
      // Synchronous rules answer without an extra turn of the event loop.
      if (typeof verdict === 'boolean') next(verdict ? undefined : rule.refusal)
      else Promise.resolve(verdict).then((ok) => next(ok === true ? undefined : rule.refusal), next)
      return
    }
    next(fallback === 'allow' ? undefined : denied)
  }
}

function compileRule(rule: AuthorizeRule, index: number): CompiledRule {
  const where = `authorize: rules[${index}]`
  if (typeof rule !== 'object' || rule === null) throw new TypeError(`${where} must be an object`)
  if (typeof rule.allow !== 'function') throw new TypeError(`${where}.allow must be a function (user, req, params) => boolean`)
  if (rule.detail !== undefined && (typeof rule.detail !== 'string' || rule.detail === '')) throw new TypeError(`${where}.detail must be a non-empty string`)
  let methods: Set<string> | undefined
  if (rule.method !== undefined) {
    const list = Array.isArray(rule.method) ? rule.method : [rule.method]
    if (list.length === 0 || list.some((m) => typeof m !== 'string' || !/^[A-Za-z]+$/.test(m))) throw new TypeError(`${where}.method must be a method name or a non-empty array of them`)
    methods = new Set(list.map((m) => m.toUpperCase()))
    if (methods.has('GET')) methods.add('HEAD')
  }
  let pattern: RegExp
  let names: string[] | undefined
  if (rule.path instanceof RegExp) {
    // Stateful flags would make exec() depend on the previous request.
    pattern = new RegExp(rule.path.source, rule.path.flags.replace(/[gy]/g, ''))
  } else if (typeof rule.path === 'string' && rule.path.startsWith('/')) {
    ({ pattern, names } = compilePattern(rule.path))
  } else {
    throw new TypeError(`${where}.path must be a path starting with "/" (e.g. "/users/:id") or a RegExp`)
  }
  return { methods, pattern, names, allow: rule.allow, refusal: new HttpError(403, rule.detail ?? DEFAULT_DETAIL, { code: 'forbidden' }) }
}

function paramsOf(match: RegExpExecArray, names: readonly string[] | undefined): Record<string, string> {
  if (names === undefined) {
    if (match.groups === undefined) return NO_PARAMS
    const params = newParams()
    for (const [name, value] of Object.entries(match.groups)) if (value !== undefined) params[name] = decode(value)
    return params
  }
  if (names.length === 0) return NO_PARAMS
  const params = newParams()
  for (let i = 0; i < names.length; i++) params[names[i]!] = decode(match[i + 1]!)
  return params
}

/** A prototype-less record, so a parameter called `__proto__` is just a key. */
function newParams(): Record<string, string> {
  return Object.create(null) as Record<string, string>
}

/** Percent-decode a segment; malformed escapes are kept as sent rather than failing the request. */
function decode(segment: string): string {
  if (!segment.includes('%')) return segment
  try {
    return decodeURIComponent(segment)
  } catch {
    return segment
  }
}
