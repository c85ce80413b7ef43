/**
 * CloudSync default UI — start-up and navigation. Loads the service info and
 * the signed-in user through the public client library, shows the tabs the
 * user may use (Users only for administrators, spec §7.3), wires the
 * buttons, and runs the pollers: tasks and logs on the task rhythm, the
 * other lists every 60 s, nothing while the page is hidden.
 *
 * This is the entry module of `dist/public/js/cloudsync-ui.js`, a classic
 * script built by `tsc -p tsconfig.ui.json` (all modules in one file) and
 * wrapped by `scripts/copy-public.mjs` so it defines no globals.
 */
/// <reference path="../../dist/public/js/cloudsync-api.d.ts" />
import { byId } from './dom.js'
import { loadSetsAndStores } from './lists.js'
import { installNoticeHooks, isFatal, reportError } from './notices.js'
import { Poller, settings } from './poller.js'
import { renderSets, openSetEditor } from './sets.js'
import { state, subscribe } from './state.js'
import { openStoreEditor, renderStores } from './stores.js'
import { openTaskEditor, renderTasks, taskPoller } from './tasks.js'
import { loadUsers, openUserEditor, renderAccount } from './users.js'

const TABS = ['tasks', 'sets', 'stores', 'users', 'account']

/** Re-reads sets, stores and users on the slow rhythm. */
let listPoller: Poller
let listsFailed = false

function loadLists(): Promise<boolean> {
  return Promise.all([loadSetsAndStores(), loadUsers()]).then(() => {
    listsFailed = false
    return false
  }, (err: unknown) => {
    if (!listsFailed || isFatal(err)) reportError(err, 'The lists could not be loaded')
    listsFailed = true
    return false
  })
}

function visibleTabs(): HTMLElement[] {
  return TABS.map((name) => byId(`tab-${name}`)).filter((tab) => !tab.hidden)
}

/**
 * Show one panel (`tasks`, `sets`, `stores`, `users`, `account`) and refresh its data.
 *
 * @example
 * selectTab('stores', true)
 */
export function selectTab(name: string, focus: boolean): void {
  const wanted = TABS.indexOf(name) !== -1 && !byId(`tab-${name}`).hidden ? name : 'tasks'
  for (const other of TABS) {
    const on = other === wanted
    const tab = byId(`tab-${other}`)
    tab.setAttribute('aria-selected', String(on))
    tab.tabIndex = on ? 0 : -1
    byId(`panel-${other}`).hidden = !on
  }
  if (focus) byId(`tab-${wanted}`).focus()
  if (location.hash !== `#${wanted}`) history.replaceState(null, '', `#${wanted}`)
  if (wanted === 'tasks') taskPoller.now()
  else if (wanted !== 'account') listPoller.now()
}

function wireTabs(): void {
  for (const name of TABS) {
    const tab = byId(`tab-${name}`)
    tab.addEventListener('click', () => selectTab(name, false))
    // Arrow keys move between tabs (WAI-ARIA tabs pattern, automatic activation).
    tab.addEventListener('keydown', (event) => {
      const tabs = visibleTabs()
      const at = tabs.indexOf(tab)
      let next = -1
      if (event.key === 'ArrowRight') next = (at + 1) % tabs.length
      else if (event.key === 'ArrowLeft') next = (at - 1 + tabs.length) % tabs.length
      else if (event.key === 'Home') next = 0
      else if (event.key === 'End') next = tabs.length - 1
      if (next === -1) return
      event.preventDefault()
      selectTab(tabs[next]!.id.slice(4), true)
    })
  }
  window.addEventListener('hashchange', () => selectTab(location.hash.slice(1), false))
}

function wireButtons(): void {
  const on = (id: string, open: (button: HTMLElement) => void): void => {
    const button = byId(id)
    button.addEventListener('click', () => open(button))
  }
  on('tasks-new', (b) => openTaskEditor(undefined, b))
  on('sets-new', (b) => openSetEditor(undefined, b))
  on('stores-new', (b) => openStoreEditor(b))
  on('users-new', (b) => openUserEditor(b))
}

function stopPolling(): void {
  taskPoller.stop()
  if (listPoller) listPoller.stop()
}

/** Start the UI on the page shell served at `{mount}/` (its `<body>` carries `data-api`, the API path). */
function start(): void {
  const api = document.body.getAttribute('data-api')
  if (api === null) return // not the CloudSync page shell
  installNoticeHooks(stopPolling)
  CloudSyncClient.create(`${location.origin}${api}/service`).then((client) =>
    client.promises.getCurrentUser().then((data) => {
      Object.assign(state, { client, me: data.user, tasks: [], logs: [], sets: [], stores: [], users: [] })
      subscribe('lists', () => {
        renderSets()
        renderStores()
        renderTasks() // tasks show the names of their set and stores
      })
      byId('tab-users').hidden = !data.user.admin
      document.body.classList.add('ready')
      listPoller = new Poller(loadLists, settings.idleMs)
      wireTabs()
      wireButtons()
      renderAccount()
      selectTab(location.hash.slice(1), false)
      document.addEventListener('visibilitychange', () => {
        if (document.hidden) stopPolling()
        else {
          taskPoller.start()
          listPoller.start()
        }
      })
      listPoller.start()
      taskPoller.start()
    })
  ).then(undefined, (err: unknown) => reportError(err, 'CloudSync could not be loaded'))
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start)
else start()
