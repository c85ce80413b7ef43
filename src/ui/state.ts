/**
 * CloudSync default UI — shared state: the API client, the signed-in user,
 * the last lists loaded from the server (entities are matched by their
 * `uri`, spec §3.2), and a tiny change signal so a panel can redraw when
 * data another panel loaded has changed.
 */
/// <reference path="../../dist/public/js/cloudsync-api.d.ts" />

/** What the panels render from. Lists are replaced, never mutated. */
export interface UiState {
  client: CloudSyncClient & { info: CloudSyncServiceInfo }
  me: CloudSyncUser
  tasks: CloudSyncTask[]
  logs: CloudSyncTaskLog[]
  sets: CloudSyncObjectSet[]
  stores: CloudSyncObjectStore[]
  users: CloudSyncUser[]
}

/** The shared state; `start()` fills `client` and `me` before anything renders. */
export const state: UiState = {} as UiState

/** What changed: tasks and logs, sets and stores, or users. */
export type Topic = 'tasks' | 'lists' | 'users'

const listeners: Record<Topic, Array<() => void>> = { tasks: [], lists: [], users: [] }

/**
 * Call `fn` whenever `topic` changes.
 *
 * @example
 * subscribe('lists', renderStores)
 */
export function subscribe(topic: Topic, fn: () => void): void {
  listeners[topic].push(fn)
}

/**
 * Tell the subscribers of `topic` that its data changed.
 *
 * @example
 * state.sets = sets; publish('lists')
 */
export function publish(topic: Topic): void {
  for (const fn of listeners[topic]) fn()
}

/**
 * The entity with this `uri` in a list.
 *
 * @example
 * const set = byUri(state.sets, data.setUri)
 */
export function byUri<T extends { uri: string }>(list: readonly T[], uri: unknown): T | undefined {
  for (const item of list) if (item.uri === uri) return item
  return undefined
}

/**
 * GET a task log's text (`contentUri`, `text/plain`). There is no client
 * method for it (spec §7.2); the request carries the same headers, so a
 * failure is reported like any client failure (`CloudSyncClient.RequestError`).
 *
 * @example
 * fetchText(log.contentUri).then((text) => show(tail(text, 20)))
 */
export function fetchText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open('GET', url, true)
    xhr.setRequestHeader('Accept', 'text/plain')
    xhr.setRequestHeader('X-Requested-With', 'XMLHttpRequest')
    xhr.onloadend = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.responseText)
      else reject(new CloudSyncClient.RequestError(xhr, 'GET', url, 'error', xhr.statusText || ''))
    }
    xhr.send()
  })
}

/**
 * Whether two JSON-able values are equal: polling redraws only what changed.
 *
 * @example
 * if (!same(state.tasks, tasks)) renderTasks()
 */
export function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}
