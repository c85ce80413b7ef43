/**
 * login — the form login page, login and logout (spec §1.1, §4.2, §6.3).
 *
 * `GET {mount}/login` renders a self-contained, accessible HTML form (or, when
 * the service is not initialized yet, a form for the first administrator).
 * `POST {mount}/login` checks the credentials, issues a NEW session id (no
 * fixation) and answers 303 to the page the user originally asked for — only
 * ever a same-origin path. `POST {mount}/logout` destroys the session
 * server-side and answers 303 to the login page. Cross-site login and logout
 * POSTs are refused with 403 (login CSRF). Failed attempts are throttled per
 * account with a {@link LoginThrottle} shared with `authenticate()`.
 *
 * Needs `session()` mounted before it. Paths are relative to the mount
 * (`req.url`); redirects are built with the mount path.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { contextOf, mountPathOf } from './context.js'
import type { AuthUser, ConnectRequest, Middleware, Next, SessionHandle } from './context.js'
import { HttpError } from './problem.js'
import { LoginThrottle } from './throttle.js'
import { normalizeOrigins, siteOf } from './origin.js'

export { LoginThrottle } from './throttle.js'

/** What the login page shows; passed to `renderPage`. All strings are raw: the renderer must HTML-escape them. */
export interface LoginView {
  /** `login`: name + password; `setup`: the first administrator's name, password and confirmation. */
  mode: 'login' | 'setup'
  /** The HTTP status the page is sent with (200, 400, 401, 409 or 429). */
  status: number
  /** The product name, from the `title` option. */
  title: string
  /** Where the form posts to (mount path + login path). */
  action: string
  /** The user name to pre-fill. */
  username: string
  /** A validated same-origin path to carry in a hidden `returnTo` field, if any. */
  returnTo?: string
  /** A notice for the `role="alert"` region (failure, throttling, setup problem). */
  notice?: string
}

/** First-run initialization hooks (spec §4.2). */
export interface LoginSetup {
  /** Whether the first administrator exists. */
  isInitialized(): Promise<boolean>
  /** Create the first administrator; must fail if already initialized. */
  initialize(name: string, password: string): Promise<unknown>
}

/** Options of {@link login}. */
export interface LoginOptions {
  /** Check a name and password; resolve the user or `undefined`. Must hash a dummy for unknown names so both take the same time. */
  verify(name: string, password: string): Promise<AuthUser | undefined>
  /** Failed-login counter; share it with `authenticate()`. Default: a private `new LoginThrottle()`. */
  throttle?: LoginThrottle
  /** Login page and form target, relative to the mount. Default `'/login'`. */
  loginPath?: string
  /** Logout target, relative to the mount. Default `'/logout'`. */
  logoutPath?: string
  /** Also answer `POST /j_spring_security_check` and `POST /j_spring_security_logout`. Default `true`. */
  legacyPaths?: boolean
  /** Where to go after login when no page was remembered, relative to the mount. Default `'/'`. */
  defaultReturnPath?: string
  /** First-run initialization; without it the page is always the login form. Default none. */
  setup?: LoginSetup
  /** Product name on the page. Default `'CloudSync'`. */
  title?: string
  /** Replace the built-in page. Must HTML-escape every string of the view. Default {@link renderLoginPage}. */
  renderPage?: (view: LoginView) => string
  /** Called after a successful login (before the redirect), e.g. for an audit log. */
  onLogin?(user: AuthUser, req: IncomingMessage): void
  /** Believe `X-Forwarded-Proto` / `X-Forwarded-Host` when judging `Origin`. Default `false`. */
  trustProxy?: boolean
  /** Extra origins whose forms may post here. Default none. */
  allowedOrigins?: string[]
}

const FORM_LIMIT = 8 * 1024
const MAX_RETURN_PATH_LENGTH = 2048
const MAX_NAME_LENGTH = 64
const CONTROL = /[\u0000-\u001f\u007f]/
const HTML_SPECIAL = /[&<>"']/g
const EDGE_BLANKS = /^[\u0000-\u0020]+|[\u0000-\u0020]+$/g
const LOGIN_ALLOW = 'GET, HEAD, POST, OPTIONS'
const POST_ALLOW = 'POST, OPTIONS'
// The page loads nothing from anywhere, may not be framed, and may only post to this site.
const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

const FAILED = 'Login failed: the user name or password is incorrect, or the account is disabled.'

/**
 * Whether `path` is safe to redirect to after login: a same-origin path
 * (one leading `/`, not `//` or `/\`, no scheme, no control characters or
 * backslashes, also after percent-decoding).
 *
 * @example
 * isSafeReturnPath('/cloudsync/api/rest/users.json') // true
 * isSafeReturnPath('//evil.example')                 // false
 */
export function isSafeReturnPath(path: unknown): path is string {
  if (typeof path !== 'string' || path.length === 0 || path.length > MAX_RETURN_PATH_LENGTH) return false
  if (!isPlainPath(path)) return false
  if (!path.includes('%')) return true
  // Something downstream may decode the path before redirecting again: the decoded form must be safe too.
  let decoded: string
  try {
    decoded = decodeURIComponent(path)
  } catch {
    return false
  }
  return isPlainPath(decoded)
}

function isPlainPath(path: string): boolean {
  return path.charCodeAt(0) === 0x2f /* / */ && path[1] !== '/' && !path.includes('\\') && !CONTROL.test(path)
}

/**
 * Escape text for HTML element content and quoted attribute values.
 *
 * @example
 * escapeHtml('<b>"x"</b>') // '&lt;b&gt;&quot;x&quot;&lt;/b&gt;'
 */
export function escapeHtml(text: string): string {
  return text.replace(HTML_SPECIAL, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;'))
}

/**
 * The built-in login page: one self-contained HTML document (no scripts, no
 * external resources) with labelled fields, autocomplete hints and a
 * `role="alert"` notice.
 *
 * @example
 * res.end(renderLoginPage({ mode: 'login', status: 200, title: 'CloudSync', action: '/login', username: '' }))
 */
export function renderLoginPage(view: LoginView): string {
  const title = escapeHtml(view.title)
  const setup = view.mode === 'setup'
  const heading = setup ? `Set up ${title}` : `Log in to ${title}`
  const hasNotice = view.notice !== undefined && view.notice !== ''
  const described = hasNotice ? ' aria-describedby="notice"' : ''
  const invalid = hasNotice && view.status !== 429 ? ' aria-invalid="true"' : ''
  const returnTo = view.returnTo === undefined ? '' : `\n<input type="hidden" name="returnTo" value="${escapeHtml(view.returnTo)}">`
  const fields = setup
    ? `<p class="intro">No administrator exists yet. Choose the name and password of the first administrator; you will be logged in as that user.</p>
<label for="username">Administrator name</label>
<input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" maxlength="${MAX_NAME_LENGTH}" required value="${escapeHtml(view.username)}"${described}${invalid}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="new-password" required${described}${invalid}>
<label for="confirm">Repeat the password</label>
<input id="confirm" name="confirm" type="password" autocomplete="new-password" required${described}${invalid}>
<button type="submit">Create administrator and log in</button>`
    : `<label for="username">User name</label>
<input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required value="${escapeHtml(view.username)}"${described}${invalid}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required${described}${invalid}>
<button type="submit">Log in</button>`
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${heading}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-size:15px;line-height:1.45;margin:0;background:#f4f5f7;color:#1d1f23;border-top:.5rem solid #123f78}
main{max-width:22rem;margin:4rem auto;padding:2rem;background:#fff;border:1px solid #c9ccd1;border-radius:.5rem;box-shadow:0 2px 8px rgba(0,0,0,.08)}
.mark{width:1.6rem;height:1.6rem;margin:0 0 .75rem;border-radius:50%;border:4px solid #1a5fb4;border-right-color:transparent;transform:rotate(-45deg)}
h1{font-size:1.4rem;margin:0 0 1rem}
label{display:block;margin:1rem 0 .25rem;font-weight:600}
input{box-sizing:border-box;width:100%;padding:.5rem;font:inherit;border:1px solid #6b7079;border-radius:.25rem}
input:focus-visible,button:focus-visible{outline:3px solid #1a5fb4;outline-offset:2px}
input[aria-invalid=true]{border-color:#a4161a}
button{margin-top:1.5rem;width:100%;padding:.6rem;font:inherit;font-weight:600;color:#fff;background:#1a5fb4;border:0;border-radius:.25rem;cursor:pointer}
button:hover{background:#123f78}
.notice:empty{display:none}
.notice{margin:0 0 1rem;padding:.75rem;border-left:4px solid #b3261e;background:#fbeaea;color:#5c0f0b}
.intro{margin:0 0 .5rem}
@media (max-width:26rem){main{margin:1rem;padding:1.25rem}}
</style>
</head>
<body>
<main>
<div class="mark" aria-hidden="true"></div>
<h1>${heading}</h1>
<p id="notice" class="notice" role="alert">${hasNotice ? escapeHtml(view.notice!) : ''}</p>
<form method="post" action="${escapeHtml(view.action)}">
${fields}${returnTo}
</form>
</main>
</body>
</html>
`
}

type Route = 'login' | 'logout'

/**
 * Create the login/logout middleware. Requests to other paths fall through
 * to `next()`. Mount it after `session()`, and list its paths as open in
 * `authenticate({ isOpen })`.
 *
 * @example
 * import connect from 'connect'
 * import { session } from 'cloudsync-kit/session'
 * import { login, LoginThrottle } from 'cloudsync-kit/login'
 *
 * const throttle = new LoginThrottle()
 * const app = connect()
 * app.use(session())
 * app.use(login({ verify: (name, password) => users.verify(name, password), throttle }))
 */
export function login(options: LoginOptions): Middleware {
  if (typeof options !== 'object' || options === null) throw new TypeError('login: options are required (verify)')
  const { verify } = options
  if (typeof verify !== 'function') throw new TypeError('login: option "verify" must be a function (name, password) => Promise<user | undefined>')
  const throttle = options.throttle ?? new LoginThrottle()
  if (!(throttle instanceof LoginThrottle)) throw new TypeError('login: option "throttle" must be a LoginThrottle')
  const loginPath = routePath(options.loginPath, '/login', 'loginPath')
  const logoutPath = routePath(options.logoutPath, '/logout', 'logoutPath')
  const defaultReturnPath = routePath(options.defaultReturnPath, '/', 'defaultReturnPath')
  if (options.legacyPaths !== undefined && typeof options.legacyPaths !== 'boolean') throw new TypeError('login: option "legacyPaths" must be a boolean')
  const setup = options.setup
  if (setup !== undefined && (typeof setup !== 'object' || setup === null || typeof setup.isInitialized !== 'function' || typeof setup.initialize !== 'function')) {
    throw new TypeError('login: option "setup" must provide isInitialized() and initialize(name, password)')
  }
  const title = options.title ?? 'CloudSync'
  if (typeof title !== 'string') throw new TypeError('login: option "title" must be a string')
  const renderPage = options.renderPage ?? renderLoginPage
  if (typeof renderPage !== 'function') throw new TypeError('login: option "renderPage" must be a function (view) => string')
  const onLogin = options.onLogin
  if (onLogin !== undefined && typeof onLogin !== 'function') throw new TypeError('login: option "onLogin" must be a function')
  if (options.trustProxy !== undefined && typeof options.trustProxy !== 'boolean') throw new TypeError('login: option "trustProxy" must be a boolean')
  const trustProxy = options.trustProxy === true
  const allowedOrigins = normalizeOrigins(options.allowedOrigins, 'login: option "allowedOrigins"')

  const routes = new Map<string, Route>([[loginPath, 'login'], [logoutPath, 'logout']])
  const postOnly = new Set<string>([logoutPath])
  if (options.legacyPaths !== false) {
    routes.set('/j_spring_security_check', 'login')
    routes.set('/j_spring_security_logout', 'logout')
    postOnly.add('/j_spring_security_check').add('/j_spring_security_logout')
  }
  if (routes.size !== (options.legacyPaths === false ? 2 : 4)) throw new TypeError('login: options "loginPath" and "logoutPath" must differ from each other and from the legacy paths')

  const crossSite = new HttpError(403, 'Login and logout requests from another site are refused; use the login form on this site.', { code: 'csrf' })
  const noSession = new HttpError(503, 'login() needs the session middleware: mount session() before login().', { code: 'session_required' })

  function page(req: IncomingMessage, res: ServerResponse, view: Omit<LoginView, 'title' | 'action'>, headers?: Record<string, string>): void {
    const html = renderPage({ ...view, title, action: mountPathOf(req) + loginPath })
    res.statusCode = view.status
    res.setHeader('Content-Type', 'text/html; charset=UTF-8')
    res.setHeader('Cache-Control', 'no-store')
    res.setHeader('Content-Security-Policy', PAGE_CSP)
    res.setHeader('X-Frame-Options', 'DENY')
    res.setHeader('Content-Length', Buffer.byteLength(html))
    if (headers !== undefined) for (const name in headers) res.setHeader(name, headers[name]!)
    res.end(req.method === 'HEAD' ? undefined : html)
  }

  async function showPage(req: IncomingMessage, res: ServerResponse, query: string): Promise<void> {
    const wanted = query === '' ? null : new URLSearchParams(query).get('returnTo')
    const returnTo = isSafeReturnPath(wanted) ? wanted : undefined
    const mode = setup !== undefined && !(await setup.isInitialized()) ? 'setup' : 'login'
    page(req, res, { mode, status: 200, username: '', returnTo })
  }

  async function submit(req: IncomingMessage, res: ServerResponse, session: SessionHandle, query: string): Promise<unknown> {
    const form = await readForm(req)
    if (form instanceof HttpError) return form
    const name = form.get('username') ?? form.get('j_username') ?? ''
    const password = form.get('password') ?? form.get('j_password') ?? ''
    const stored = session.record.data.returnTo
    const fromForm = form.get('returnTo') ?? (query === '' ? null : new URLSearchParams(query).get('returnTo'))
    const formReturnTo = isSafeReturnPath(fromForm) ? fromForm : undefined
    const returnTo = isSafeReturnPath(stored) ? stored : formReturnTo

    if (setup !== undefined && !(await setup.isInitialized())) {
      return initialize(req, res, session, name, password, form.get('confirm') ?? '', returnTo, formReturnTo)
    }
    if (name !== '') {
      const decision = throttle.check(name)
      if (!decision.allowed) {
        const seconds = String(decision.retryAfterSeconds)
        page(req, res, { mode: 'login', status: 429, username: name, returnTo: formReturnTo, notice: `Too many failed attempts for this account. Try again in ${seconds} seconds.` }, { 'Retry-After': seconds })
        return undefined
      }
    }
    // Missing fields still go through verify: an empty form must not answer faster than a wrong password.
    const user = await verify(name, password)
    if (user === undefined || user.enabled === false || name === '') {
      if (name !== '') throttle.recordFailure(name)
      page(req, res, { mode: 'login', status: 401, username: name, returnTo: formReturnTo, notice: FAILED })
      return undefined
    }
    throttle.recordSuccess(name)
    return complete(req, res, session, user, returnTo)
  }

  async function initialize(req: IncomingMessage, res: ServerResponse, session: SessionHandle, rawName: string, password: string, confirm: string, returnTo: string | undefined, formReturnTo: string | undefined): Promise<unknown> {
    const name = rawName.replace(EDGE_BLANKS, '')
    const problem = name === '' || name.length > MAX_NAME_LENGTH || CONTROL.test(name)
      ? `Choose an administrator name of 1 to ${MAX_NAME_LENGTH} characters (no control characters).`
      : password === '' ? 'Choose a password for the administrator.'
        : password !== confirm ? 'The two passwords do not match; type the same password twice.' : undefined
    if (problem !== undefined) {
      page(req, res, { mode: 'setup', status: 400, username: name, returnTo: formReturnTo, notice: problem })
      return undefined
    }
    try {
      await setup!.initialize(name, password)
    } catch (err) {
      if (!(await setup!.isInitialized())) throw err
      // Someone else set the service up first: this form cannot create an administrator any more.
      page(req, res, { mode: 'login', status: 409, username: '', returnTo: formReturnTo, notice: 'The service has just been set up by someone else. Log in with an existing account.' })
      return undefined
    }
    const user = await verify(name, password)
    if (user === undefined || user.enabled === false) {
      page(req, res, { mode: 'login', status: 401, username: name, returnTo: formReturnTo, notice: FAILED })
      return undefined
    }
    return complete(req, res, session, user, returnTo)
  }

  async function complete(req: IncomingMessage, res: ServerResponse, session: SessionHandle, user: AuthUser, returnTo: string | undefined): Promise<unknown> {
    await session.regenerate()
    session.record.userId = user.id
    delete session.record.data.returnTo
    await session.save()
    onLogin?.(user, req)
    redirect(res, returnTo ?? mountPathOf(req) + defaultReturnPath)
    return undefined
  }

  async function logout(req: IncomingMessage, res: ServerResponse, session: SessionHandle): Promise<unknown> {
    req.resume() // the body, if any, is not needed
    await session.destroy()
    redirect(res, mountPathOf(req) + loginPath)
    return undefined
  }

  return function loginMiddleware(req: IncomingMessage, res: ServerResponse, next: Next): void {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const route = routes.get(path)
    if (route === undefined) {
      next()
      return
    }
    const method = req.method ?? 'GET'
    const allow = postOnly.has(path) || route === 'logout' ? POST_ALLOW : LOGIN_ALLOW
    if (method === 'OPTIONS') {
      res.statusCode = 200
      res.setHeader('Allow', allow)
      res.setHeader('Content-Length', 0)
      res.end()
      return
    }
    const isPost = method === 'POST'
    if (!isPost && (allow === POST_ALLOW || (method !== 'GET' && method !== 'HEAD'))) {
      next(new HttpError(405, `${path} accepts only ${allow.replace(', OPTIONS', '')}; use one of those methods.`, { code: 'method_not_allowed', headers: { Allow: allow } }))
      return
    }
    const session = contextOf(req).session
    if (session === undefined) {
      next(noSession)
      return
    }
    const query = q === -1 ? '' : url.slice(q + 1)
    if (!isPost) {
      showPage(req, res, query).then(undefined, next)
      return
    }
    if (siteOf(req, trustProxy, allowedOrigins) === 'cross-site') {
      req.resume()
      next(crossSite)
      return
    }
    const work = route === 'login' ? submit(req, res, session, query) : logout(req, res, session)
    work.then((err) => {
      if (err !== undefined) next(err)
    }, next)
  }
}

function redirect(res: ServerResponse, location: string): void {
  res.statusCode = 303
  res.setHeader('Location', location)
  res.setHeader('Cache-Control', 'no-store')
  res.setHeader('Content-Length', 0)
  res.end()
}

/** The urlencoded form of a login POST, or the HttpError to answer with. */
function readForm(req: IncomingMessage): Promise<URLSearchParams | HttpError> {
  const type = req.headers['content-type']
  const semi = type === undefined ? -1 : type.indexOf(';')
  const mediaType = type === undefined ? '' : (semi === -1 ? type : type.slice(0, semi)).trim().toLowerCase()
  if (mediaType !== 'application/x-www-form-urlencoded') {
    req.resume()
    return Promise.resolve(new HttpError(415, 'Send the login form as application/x-www-form-urlencoded with the fields username and password.', {
      code: 'unsupported_media_type',
      headers: { Accept: 'application/x-www-form-urlencoded' }
    }))
  }
  // A body parser mounted earlier (ours or Express's) may have consumed the stream already.
  if (req.readableEnded) return Promise.resolve(fromParsed(contextOf(req).body ?? (req as ConnectRequest).body))
  const declared = Number(req.headers['content-length'])
  if (declared > FORM_LIMIT) {
    req.resume()
    return Promise.resolve(tooLarge())
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    let settled = false
    const finish = (result: URLSearchParams | HttpError): void => {
      if (settled) return
      settled = true
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('close', onClose)
      resolve(result)
    }
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > FORM_LIMIT) {
        finish(tooLarge())
        req.resume() // discard the rest; the connection is closed after the answer
        return
      }
      chunks.push(chunk)
    }
    const onEnd = (): void => finish(new URLSearchParams(Buffer.concat(chunks, size).toString('utf8')))
    const onError = (): void => finish(new HttpError(400, 'The login form could not be read; send it again.', { code: 'bad_request' }))
    const onClose = (): void => finish(new HttpError(400, 'The login form was cut off; send it again.', { code: 'bad_request' }))
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('close', onClose)
  })
}

function tooLarge(): HttpError {
  return new HttpError(413, `The login form is larger than ${FORM_LIMIT} bytes; send only the user name and password.`, {
    code: 'payload_too_large',
    headers: { Connection: 'close' }
  })
}

/** Fields from an already-parsed body (first value of repeated fields; strings only). */
function fromParsed(parsed: unknown): URLSearchParams {
  const form = new URLSearchParams()
  if (typeof parsed !== 'object' || parsed === null) return form
  for (const field of ['username', 'password', 'j_username', 'j_password', 'confirm', 'returnTo']) {
    if (!Object.prototype.hasOwnProperty.call(parsed, field)) continue
    const raw = (parsed as Record<string, unknown>)[field]
    const value = Array.isArray(raw) ? raw[0] : raw
    if (typeof value === 'string') form.set(field, value)
  }
  return form
}

function routePath(value: unknown, fallback: string, name: string): string {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || !value.startsWith('/') || value.startsWith('//') || /[?#\u0000-\u0020\u007f]/.test(value)) {
    throw new TypeError(`login: option "${name}" must be a path starting with "/" (no query, no spaces)`)
  }
  return value
}
