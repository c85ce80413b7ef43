/**
 * The page at `{mount}/`: the shell of the default browser UI (spec §1.1,
 * §7.3). It is static HTML (header, tabs, empty panels); the UI script
 * (`/js/cloudsync-ui.js`, built from `src/ui/`) fills it through the public
 * client library (`/js/cloudsync-api.js`). Nothing is loaded from another
 * origin, and the page's policy allows only its own scripts and styles.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { sendCacheable } from '../middleware/security-headers.js'
import { HttpError } from '../middleware/problem.js'

// Own scripts, styles, images and API calls only; no inline code; no framing; forms only to this site.
const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
const HTML_SPECIAL = /[&<>"']/g
const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

function escapeHtml(text: string): string {
  return text.replace(HTML_SPECIAL, (c) => ENTITIES[c]!)
}

function tab(name: string, label: string, selected: boolean): string {
  return `<button type="button" role="tab" id="tab-${name}" aria-controls="panel-${name}" aria-selected="${selected}" tabindex="${selected ? 0 : -1}"${name === 'users' ? ' hidden' : ''}>${label}</button>`
}

function panel(name: string, title: string, body: string, newLabel?: string): string {
  const head = newLabel === undefined
    ? `<div class="panel-head"><h2>${title}</h2></div>`
    : `<div class="panel-head"><h2>${title}</h2><button type="button" id="${name}-new" class="primary" aria-expanded="false" aria-controls="${name}-editor">${newLabel}</button></div>
<section id="${name}-editor" class="editor" hidden></section>`
  return `<section id="panel-${name}" role="tabpanel" aria-labelledby="tab-${name}" tabindex="0"${name === 'tasks' ? '' : ' hidden'}>
${head}
${body}
</section>`
}

const LOADING = '<p class="empty">Loading…</p>'

/**
 * The HTML of the UI page.
 *
 * @example
 * renderIndexPage('/cloudsync', '/api/rest', 'admin')
 */
export function renderIndexPage(mount: string, apiPath: string, userName: string): string {
  const m = escapeHtml(mount)
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>CloudSync</title>
<link rel="stylesheet" href="${m}/css/cloudsync.css">
<script src="${m}/js/cloudsync-api.js" defer></script>
<script src="${m}/js/cloudsync-ui.js" defer></script>
</head>
<body data-mount="${m}" data-api="${escapeHtml(mount + apiPath)}">
<a class="skip" href="#main">Skip to the content</a>
<header class="top">
<p class="brand"><span class="logo" aria-hidden="true"></span>CloudSync</p>
<p class="who">Signed in as <strong>${escapeHtml(userName)}</strong></p>
<form id="cs-logout" method="post" action="${m}/logout"><button type="submit">Log out</button></form>
</header>
<nav class="tabs" role="tablist" aria-label="Sections">
${tab('tasks', 'Tasks', true)}
${tab('sets', 'Object sets', false)}
${tab('stores', 'Object stores', false)}
${tab('users', 'Users', false)}
${tab('account', 'Account', false)}
</nav>
<div id="cs-notices" class="notices" aria-live="polite"></div>
<main id="main">
${panel('tasks', 'Tasks', `<h3>Active</h3>
<div id="tasks-active" aria-live="off">${LOADING}</div>
<h3>Idle</h3>
<div id="tasks-idle">${LOADING}</div>
<h3>Completed runs</h3>
<div id="tasks-completed">${LOADING}</div>`, 'New task')}
${panel('sets', 'Object sets', `<p class="intro">An object set chooses the objects a task works on: a PID pattern, a list of PIDs, or a Resource Index query.</p>
<div id="sets-list">${LOADING}</div>`, 'New object set')}
${panel('stores', 'Object stores', `<p class="intro">Object stores are the places objects are listed in, copied from and copied to.</p>
<div id="stores-list">${LOADING}</div>`, 'New object store')}
${panel('users', 'Users', '<div id="users-list"><p class="empty">Loading…</p></div>', 'New user')}
${panel('account', 'Account', `<div id="account-body">${LOADING}</div>`)}
<noscript><p class="notice notice-error">The CloudSync interface needs JavaScript. The API stays available at <a href="${escapeHtml(mount + apiPath)}/service.json">${escapeHtml(mount + apiPath)}/service.json</a>.</p></noscript>
</main>
</body>
</html>
`
}

/**
 * Answer `GET`/`HEAD {mount}/` with the UI page (ETag, `private, no-cache`, 304 on a match).
 *
 * @example
 * serveIndexPage(req, res, '/cloudsync', '/api/rest', user.name)
 */
export function serveIndexPage(req: IncomingMessage, res: ServerResponse, mount: string, apiPath: string, userName: string): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    throw new HttpError(405, 'The page can only be read with GET or HEAD.', { code: 'method_not_allowed', headers: { Allow: 'GET, HEAD' } })
  }
  res.setHeader('Content-Security-Policy', PAGE_CSP)
  sendCacheable(req, res, renderIndexPage(mount, apiPath, userName), 'text/html; charset=utf-8', 200)
}
