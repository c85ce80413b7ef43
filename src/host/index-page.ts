/** The page at `{mount}/`: links to every collection's `.json` and `.xml` view. */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { sendCacheable } from '../middleware/security-headers.js'
import { HttpError } from '../middleware/problem.js'

const COLLECTIONS = ['service', 'users', 'users/current', 'tasks', 'taskLogs', 'objectSets', 'objectStores']

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

export function renderIndexPage(mount: string, apiPath: string, userName: string): string {
  const api = `${mount}${apiPath}`
  const rows = COLLECTIONS.map((c) => `<li><code>${c}</code>: <a href="${escapeHtml(`${api}/${c}.json`)}">JSON</a> · <a href="${escapeHtml(`${api}/${c}.xml`)}">XML</a></li>`).join('')
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>CloudSync</title></head><body><main><h1>CloudSync</h1><p>Signed in as <strong>${escapeHtml(userName)}</strong>.</p><h2>Browse the API</h2><ul>${rows}</ul><form method="post" action="${escapeHtml(`${mount}/logout`)}"><button type="submit">Log out</button></form></main></body></html>`
}

export function serveIndexPage(req: IncomingMessage, res: ServerResponse, mount: string, apiPath: string, userName: string): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    throw new HttpError(405, 'The page can only be read with GET or HEAD.', { code: 'method_not_allowed', headers: { Allow: 'GET, HEAD' } })
  }
  sendCacheable(req, res, renderIndexPage(mount, apiPath, userName), 'text/html; charset=utf-8', 200)
}
