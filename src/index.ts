/**
 * `cloudsync(options)`: the complete CloudSync service as one
 * Connect-compatible handler, mountable at any path of any app
 * (`app.use('/cloudsync', cloudsync({ dataDir }))`) or served directly by
 * `http.createServer(cloudsync())`.
 *
 * It composes the toolkit's pieces in the pipeline order of the design:
 * security headers → format suffix → session → authenticate → method
 * override → CSRF → route (404/405) → authorize (403) → 415 → 406 → body →
 * resource → problem documents.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { contextOf, mountPathOf, pathOnly } from './middleware/context.js'
import type { AuthUser, Middleware, Next } from './middleware/context.js'
import { HttpError, problemHandler } from './middleware/problem.js'
import { securityHeaders } from './middleware/security-headers.js'
import { formatSuffix } from './middleware/format-suffix.js'
import { methodOverride } from './middleware/method-override.js'
import { session } from './middleware/session.js'
import { authenticate } from './middleware/authenticate.js'
import { csrf } from './middleware/csrf.js'
import { authorize } from './middleware/authorize.js'
import { login } from './middleware/login.js'
import { LoginThrottle } from './middleware/throttle.js'
import type { Backend, UserRecord } from './backend/types.js'
import { openSqliteBackend } from './backend/sqlite/index.js'
import { TaskManager } from './backend/tasks/manager.js'
import { apiHandler, isOpenApiPath, OVERRIDE_ERROR } from './resources/api.js'
import { prepareStoreRoots } from './resources/store-roots.js'
import type { ApiServices } from './resources/operation.js'
import { compose } from './compose.js'
import { resolveOptions } from './host/options.js'
import type { CloudSyncOptions } from './host/options.js'
import { userManagementRules } from './host/user-rules.js'
import { isAssetPath, loadAssets, serveAsset } from './host/assets.js'
import { serveIndexPage } from './host/index-page.js'

export type { CloudSyncOptions } from './host/options.js'
export type * from './backend/types.js'
export { BackendError } from './backend/types.js'
export { HttpError } from './middleware/problem.js'
export { openSqliteBackend } from './backend/sqlite/index.js'

/** The handler returned by `cloudsync()`. */
export interface CloudSyncHandler {
  (req: IncomingMessage, res: ServerResponse, next?: Next): void
  /** Resolves when start-up (store roots, task recovery) is done; requests wait for it anyway. */
  readonly ready: Promise<void>
  /** The backend in use. */
  readonly backend: Backend
  /** Stop the task manager gracefully (running tasks end as Canceled) and close the backend. */
  close(): Promise<void>
}

const LOGIN_PATHS = new Set(['/login', '/logout', '/j_spring_security_check', '/j_spring_security_logout'])

function toAuthUser(user: UserRecord | undefined): AuthUser | undefined {
  return user === undefined ? undefined : { id: user.id, name: user.name, admin: user.admin, enabled: user.enabled }
}

export function cloudsync(options: CloudSyncOptions = {}): CloudSyncHandler {
  const opts = resolveOptions(options)
  // Exclusive: the embedded task manager must be the only one on this data.
  const backend = opts.backend ?? openSqliteBackend({ dataDir: opts.dataDir, exclusive: true })
  const apiPath = opts.apiPath
  const throttle = new LoginThrottle(opts.loginThrottle)
  const verify = async (name: string, password: string) => toAuthUser(await backend.verifyPassword(name, password))
  // The SQLite backend can answer synchronously: authentication then needs no promise per request.
  const getUserSync = (backend as { getUserSync?: (id: number) => UserRecord | undefined }).getUserSync?.bind(backend)
  const lookup = getUserSync !== undefined
    ? (id: string | number) => {
        const numeric = Number(id)
        return Number.isSafeInteger(numeric) ? toAuthUser(getUserSync(numeric)) : undefined
      }
    : async (id: string | number) => {
        const numeric = Number(id)
        return Number.isSafeInteger(numeric) ? toAuthUser(await backend.getUser(numeric)) : undefined
      }
  // One host allow-list for everything the server contacts: DuraCloud look-ups and remote stores.
  const outbound = opts.outboundHosts === undefined ? {} : { allowedHosts: opts.outboundHosts }
  const manager = opts.taskManager === false
    ? undefined
    : new TaskManager(backend, { ...opts.taskManager, storeOptions: { outbound }, log: (message: string) => opts.log(message) })

  const storeRoots: string[] = []
  const services: ApiServices = {
    backend,
    storeRoots,
    outbound,
    onTaskChanged: () => manager?.wake(),
    onUsersChanged: () => auth.invalidate()
  }

  const security = securityHeaders()
  const sessions = session({ store: backend.sessions, trustProxy: opts.trustProxy, ...opts.session })
  const auth = authenticate({
    verify,
    lookup,
    throttle,
    cache: opts.basicAuthCache,
    isOpen: (req) => isOpenApiPath(pathOnly(req.url ?? '/').slice(apiPath.length))
  })
  const override = methodOverride()
  // A refused override is reported after routing, so an unknown path still answers 404 (spec §1.4).
  const deferredOverride: Middleware = (req, res, next) =>
    override(req, res, (err?: unknown) => {
      if (err !== undefined && err !== null) (contextOf(req) as Record<symbol, unknown>)[OVERRIDE_ERROR] = err
      next()
    })
  // One trailing slash on an API path is ignored (spec §1.4).
  const trailingSlash: Middleware = (req, _res, next) => {
    const url = req.url ?? '/'
    const path = pathOnly(url)
    if (path.length > apiPath.length + 1 && path.endsWith('/')) req.url = path.slice(0, -1) + url.slice(path.length)
    next()
  }
  // CSRF runs with the permission rules, after routing: an unknown path still
  // answers 404 and an unsupported method 405 (spec §1.4 precedence).
  const permissions = compose([csrf({ trustProxy: opts.trustProxy }), authorize({ rules: userManagementRules(apiPath) })])
  const api = apiHandler({ services, bodyLimit: opts.bodyLimit, apiPath, trustProxy: opts.trustProxy, ...(opts.publicUrl === undefined ? {} : { publicUrl: opts.publicUrl }), authorize: permissions })
  const apiStack = compose([trailingSlash, formatSuffix(), sessions, auth, deferredOverride, api])
  const loginStack = compose([sessions, login({
    verify,
    throttle,
    trustProxy: opts.trustProxy,
    setup: {
      isInitialized: () => backend.isInitialized(),
      initialize: (name: string, password: string) => backend.initialize({ name, password })
    }
  })])
  const indexPage: Middleware = (req, res, next) => {
    try {
      const ctx = contextOf(req)
      serveIndexPage(req, res, ctx.mountPath ?? '', apiPath, ctx.user?.name ?? '')
    } catch (err) {
      next(err)
    }
  }
  const pageStack = compose([sessions, auth, indexPage])
  const assets = loadAssets()
  const renderProblem = problemHandler({ log: (err) => opts.log('cloudsync: internal error', err) })

  let started = false
  const ready = (async () => {
    storeRoots.push(...await prepareStoreRoots(opts.storeRoots))
    await manager?.start()
    started = true
  })()
  ready.catch((err) => opts.log('cloudsync: start-up failed', err))

  function route(req: IncomingMessage, res: ServerResponse, next: Next | undefined): void {
    const done: Next = (err) => {
      if (err !== undefined && err !== null) return renderProblem(err, req, res, () => {})
      if (!res.headersSent && !res.writableEnded) renderProblem(new HttpError(404, 'Nothing here.'), req, res, () => {})
    }
    const path = pathOnly(req.url ?? '/')
    if (path === apiPath || path.startsWith(apiPath + '/')) return apiStack(req, res, done)
    if (LOGIN_PATHS.has(path)) return loginStack(req, res, done)
    if (isAssetPath(path)) {
      try {
        return serveAsset(assets, path, req, res)
      } catch (err) {
        return done(err)
      }
    }
    if (path === '/' || path === '') return pageStack(req, res, done)
    if (next !== undefined) return next()
    done(new HttpError(404, 'No resource exists at this path; the API lives below ' + apiPath + '.', { code: 'not_found' }))
  }

  const handler = function cloudsyncHandler(req: IncomingMessage, res: ServerResponse, next?: Next): void {
    contextOf(req).mountPath = mountPathOf(req)
    // As Connect does: keep the URL as sent (the suffix is stripped from `url` later).
    const connectReq = req as IncomingMessage & { originalUrl?: string }
    if (connectReq.originalUrl === undefined) connectReq.originalUrl = req.url
    security(req, res, () => {
      if (started) return route(req, res, next)
      ready.then(() => route(req, res, next), (err) => renderProblem(err, req, res, () => {}))
    })
  } as CloudSyncHandler

  let closing: Promise<void> | undefined
  Object.defineProperties(handler, {
    ready: { value: ready },
    backend: { value: backend },
    close: {
      value: () => {
        closing ??= (async () => {
          await ready.catch(() => {})
          await manager?.shutdown()
          await backend.close()
        })()
        return closing
      }
    }
  })
  return handler
}

export default cloudsync
