/**
 * CloudSync default UI — notices: one `aria-live` region at the top of the
 * page for confirmations and errors, and the bridge that turns failed API
 * requests into readable sentences (the problem document's `detail`).
 */
/// <reference path="../../dist/public/js/cloudsync-api.d.ts" />
import { byId, h } from './dom.js'

const KEEP_INFO_MS = 6000
const MAX_NOTICES = 4

/**
 * Show a notice. Errors are announced at once (`role="alert"`) and stay
 * until dismissed; confirmations are announced politely and fade away.
 *
 * @example
 * notify('Task "Nightly copy" created.', 'info')
 */
export function notify(message: string, kind: 'info' | 'error'): void {
  const region = byId('cs-notices')
  // A new confirmation replaces the previous one; errors stay until dismissed.
  if (kind === 'info') region.querySelectorAll('.notice-info').forEach((old) => old.remove())
  const item = h('div', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('p', null, message),
    h('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss this notice', onclick: () => item.remove() }, '×'))
  region.appendChild(item)
  while (region.children.length > MAX_NOTICES) region.removeChild(region.firstChild!)
  if (kind === 'info') window.setTimeout(() => item.remove(), KEEP_INFO_MS)
}

/**
 * Report a failed action. Session expiry and an unreachable service go to
 * the client library's default handler (notice, then reload: the server
 * then shows the login page); any other refusal is shown with the
 * server's own explanation.
 *
 * @example
 * client.promises.deleteObjectSet(set.uri).then(refresh, (err) => reportError(err, 'The set was not deleted'))
 */
export function reportError(err: unknown, what: string): void {
  if (isFatal(err)) {
    CloudSyncClient.handleError(err)
    return
  }
  notify(`${what}: ${detailOf(err)}`, 'error')
}

/**
 * The sentence that explains a failure: the problem document's `detail`
 * when the server sent one.
 *
 * @example
 * detailOf(err) // 'The object set is used by a task; delete the task first.'
 */
export function detailOf(err: unknown): string {
  if (err instanceof CloudSyncClient.RequestError) {
    if (err.problem && typeof err.problem.detail === 'string') return err.problem.detail
    return err.status === 0 ? 'The server could not be reached.' : `The server answered HTTP ${err.status}.`
  }
  return err instanceof Error ? err.message : String(err)
}

/**
 * Whether a failure means the page cannot go on (session over, service
 * gone): the client library's default handler deals with those.
 *
 * @example
 * if (isFatal(err)) CloudSyncClient.handleError(err)
 */
export function isFatal(err: unknown): err is CloudSyncRequestError {
  return err instanceof CloudSyncClient.RequestError &&
    (err.status === 0 || err.status === 401 || err.status === 503 || err.textStatus === 'parsererror')
}

let reloading = false

/**
 * Route the client library's default notices into the page, and delay its
 * reload a moment so the notice can be read (and announced) first.
 *
 * @example
 * installNoticeHooks(() => poller.stop())
 */
export function installNoticeHooks(onLeave: () => void): void {
  CloudSyncClient.onNotice = (message) => notify(message, 'error')
  CloudSyncClient.reload = () => {
    if (reloading) return
    reloading = true
    onLeave()
    window.setTimeout(() => location.reload(), 1500)
  }
}
