/**
 * CloudSync default UI — the Tasks panel: active tasks with their live log
 * tail, progress and run controls; idle tasks (run, edit, delete); completed
 * runs with their result, dates and full log.
 */
/// <reference path="../../dist/public/js/cloudsync-api.d.ts" />
import { byId, checkbox, field, h, keepFocus, replace, select, showOnly, table, time } from './dom.js'
import { openEditor, suggestedName, valueOf } from './forms.js'
import { loadSetsAndStores } from './lists.js'
import { isFatal, notify, reportError } from './notices.js'
import { Poller } from './poller.js'
import { byUri, fetchText, same, state } from './state.js'
import { countObjectLines, parseJsonObject, suggestTaskName, tail } from './text.js'

type TaskState = CloudSyncTask['state']

/** The state changes a person may ask for in each state (spec §4.6). */
const CONTROLS: Record<TaskState, Array<[string, TaskState]>> = {
  Idle: [['Run', 'Starting']],
  Starting: [['Cancel', 'Canceling']],
  Running: [['Pause', 'Pausing'], ['Cancel', 'Canceling']],
  Resuming: [['Pause', 'Pausing'], ['Cancel', 'Canceling']],
  Pausing: [['Resume', 'Resuming'], ['Cancel', 'Canceling']],
  Paused: [['Resume', 'Resuming'], ['Cancel', 'Canceling']],
  Canceling: []
}
const TAIL_LINES = 15
const COPY_FLAGS: Array<[string, string, boolean]> = [
  ['overwrite', 'Replace objects that already exist in the destination', false],
  ['includeManaged', 'Include objects that have managed (M) datastreams', true],
  ['copyExternal', 'Copy the content of external (E) datastreams into the destination', false],
  ['copyRedirect', 'Copy the content of redirect (R) datastreams into the destination', false]
]

/** The latest text of each active run's log, re-read on every poll. */
const tailTexts = new Map<string, string>()
/** The text of finished runs' logs, read once when first shown (it no longer changes). */
const finishedTexts = new Map<string, string>()
/** Where each active task's tail and progress are shown, by log uri. */
const tails = new Map<string, { pre: HTMLElement; progress: HTMLElement }>()
let pollFailed = false
let tasksLoaded = false

/** Re-reads tasks and logs; the Tasks panel's poller. */
export const taskPoller = new Poller(loadTasks)

/**
 * Load tasks and logs, re-render what changed, refresh the active logs'
 * tails. Resolves with whether any task is active.
 *
 * @example
 * loadTasks().then((active) => console.log(active ? 'busy' : 'idle'))
 */
export function loadTasks(): Promise<boolean> {
  const client = state.client
  return Promise.all([client.promises.listTasks(), client.promises.listTaskLogs()]).then(([t, l]) => {
    pollFailed = false
    const changed = !tasksLoaded || !same(state.tasks, t.tasks) || !same(state.logs, l.taskLogs)
    tasksLoaded = true
    state.tasks = t.tasks
    state.logs = l.taskLogs
    const active = state.tasks.filter((task) => task.state !== 'Idle')
    if (changed) renderTasks()
    return readTails(active).then(() => active.length > 0)
  }, (err: unknown) => {
    // One notice per outage, not one per poll.
    if (!pollFailed || isFatal(err)) reportError(err, 'The tasks could not be loaded')
    pollFailed = true
    return state.tasks.some((task) => task.state !== 'Idle')
  })
}

function readTails(active: CloudSyncTask[]): Promise<unknown> {
  // Forget the tails of runs that have ended.
  for (const uri of Array.from(tailTexts.keys())) {
    if (!active.some((task) => task.activeLogUri === uri)) tailTexts.delete(uri)
  }
  return Promise.all(active.map((task) => {
    const log = byUri(state.logs, task.activeLogUri)
    if (log === undefined) return undefined
    return fetchText(log.contentUri).then((text) => {
      tailTexts.set(log.uri, text)
      showTail(log.uri)
    }, () => undefined) // the run may have ended meanwhile; the next poll tells
  }))
}

function showTail(logUri: string): void {
  const target = tails.get(logUri)
  const text = tailTexts.get(logUri)
  if (target === undefined || text === undefined) return
  const count = countObjectLines(text)
  target.progress.textContent = `${count} object${count === 1 ? '' : 's'} done so far`
  const shown = tail(text, TAIL_LINES)
  if (target.pre.textContent !== shown) {
    target.pre.textContent = shown
    target.pre.scrollTop = target.pre.scrollHeight
  }
}

function describeTask(task: CloudSyncTask): { set: string; stores: string } {
  const data = parseJsonObject(task.data) || {}
  const setName = byUri(state.sets, data.setUri)?.name ?? 'an unknown set'
  const storeName = (key: string): string => byUri(state.stores, data[key])?.name ?? 'an unknown store'
  const stores = task.type === 'list'
    ? storeName('storeUri')
    : `${storeName('sourceStoreUri')} → ${storeName('destStoreUri')}${data.queryStoreUri !== data.sourceStoreUri ? ` (queried in ${storeName('queryStoreUri')})` : ''}`
  return { set: setName, stores }
}

function changeState(task: CloudSyncTask, next: TaskState, label: string): void {
  state.client.promises.updateTask(task.uri, { task: { state: next } }).then((data) => {
    // Show the accepted state at once; the poller follows the rest.
    state.tasks = state.tasks.map((t) => (t.uri === task.uri ? data.task : t))
    renderTasks()
    taskPoller.hurry()
  }, (err: unknown) => {
    reportError(err, `${label} "${task.name}" was refused`)
    taskPoller.hurry()
  })
}

function deleteTask(task: CloudSyncTask): void {
  if (!window.confirm(`Delete the task "${task.name}"? Its run logs must be deleted first.`)) return
  state.client.promises.deleteTask(task.uri).then(() => {
    notify(`Task "${task.name}" deleted.`, 'info')
    taskPoller.hurry()
  }, (err: unknown) => reportError(err, `The task "${task.name}" was not deleted`))
}

function deleteLog(log: CloudSyncTaskLog, taskName: string): void {
  if (!window.confirm(`Delete this run log of "${taskName}"?`)) return
  state.client.promises.deleteTaskLog(log.uri).then(() => {
    finishedTexts.delete(log.uri)
    openLogs.delete(log.uri)
    notify(`Run log of "${taskName}" deleted.`, 'info')
    taskPoller.hurry()
  }, (err: unknown) => reportError(err, 'The run log was not deleted'))
}

function controls(task: CloudSyncTask): HTMLElement {
  return h('div', { class: 'buttons', role: 'group', 'aria-label': `Actions for ${task.name}` },
    CONTROLS[task.state].map(([label, next]) => h('button', {
      type: 'button',
      class: next === 'Canceling' ? 'danger' : next === 'Starting' ? 'primary' : '',
      'data-key': `${task.uri} ${label}`,
      onclick: () => changeState(task, next, label)
    }, label)),
    task.state === 'Idle' && [
      h('button', { type: 'button', 'data-key': `${task.uri} Edit`, onclick: (e: Event) => openTaskEditor(task, e.currentTarget as HTMLElement) }, 'Edit'),
      h('button', { type: 'button', class: 'danger', 'data-key': `${task.uri} Delete`, onclick: () => deleteTask(task) }, 'Delete')
    ])
}

function activeCard(task: CloudSyncTask): HTMLElement {
  const names = describeTask(task)
  const log = byUri(state.logs, task.activeLogUri)
  const pre = h('pre', { class: 'log-tail', tabindex: 0, 'aria-label': `Latest log lines of ${task.name}` })
  const progress = h('p', { class: 'progress' }, task.state === 'Starting' ? 'Starting…' : '')
  if (log !== undefined) {
    tails.set(log.uri, { pre, progress })
  }
  return h('li', { class: 'card', 'data-task': task.uri },
    h('div', { class: 'card-head' },
      h('h4', null, task.name),
      h('span', { class: `state state-${task.state.toLowerCase()}` }, task.state)),
    h('p', { class: 'meta' }, `${task.type === 'list' ? 'List' : 'Copy'} ${names.set} · ${names.stores}`),
    progress,
    log !== undefined && [pre, h('p', { class: 'meta' }, 'Started ', time(log.startDate), ' · ',
      h('a', { href: log.contentUri, target: '_blank', rel: 'noopener' }, 'Full log'))],
    controls(task))
}

function idleRow(task: CloudSyncTask): HTMLElement {
  const names = describeTask(task)
  const last = state.logs.filter((log) => log.taskUri === task.uri && log.resultType !== 'Incomplete')[0]
  return h('tr', { 'data-task': task.uri },
    h('th', { scope: 'row' }, task.name),
    h('td', null, task.type === 'list' ? 'List' : 'Copy'),
    h('td', null, names.set),
    h('td', null, names.stores),
    h('td', null, last ? h('span', { class: `result result-${last.resultType.toLowerCase()}` }, last.resultType) : 'Never run'),
    h('td', { class: 'actions' }, controls(task)))
}

/** The finished runs whose log is shown (by log uri); survives redraws. */
const openLogs = new Set<string>()

/** A finished run: its row, and a full-width row under it for the log when shown. */
function logRows(log: CloudSyncTaskLog): HTMLElement[] {
  const task = byUri(state.tasks, log.taskUri)
  const taskName = task ? task.name : 'A deleted task'
  const logId = `log-${log.uri.replace(/[^A-Za-z0-9]+/g, '-')}`
  const shown = openLogs.has(log.uri)
  const pre = h('pre', { class: 'log-full', tabindex: 0, 'aria-label': `Log of ${taskName}` }, finishedTexts.get(log.uri) ?? 'Loading…')
  const logRow = h('tr', { class: 'log-row', id: logId, hidden: !shown }, h('td', { colspan: 6 }, pre))
  const load = (): void => {
    if (finishedTexts.has(log.uri)) return
    fetchText(log.contentUri).then((text) => {
      finishedTexts.set(log.uri, text)
      pre.textContent = text
    }, (err: unknown) => {
      pre.textContent = 'The log could not be loaded.'
      reportError(err, 'The log could not be loaded')
    })
  }
  const toggle = h('button', { type: 'button', 'aria-expanded': String(shown), 'aria-controls': logId, 'data-key': `${log.uri} Log` }, shown ? 'Hide log' : 'Show log')
  toggle.addEventListener('click', () => {
    const show = !openLogs.has(log.uri)
    if (show) openLogs.add(log.uri)
    else openLogs.delete(log.uri)
    toggle.setAttribute('aria-expanded', String(show))
    toggle.textContent = show ? 'Hide log' : 'Show log'
    logRow.hidden = !show
    if (show) load()
  })
  if (shown) load()
  const row = h('tr', { 'data-log': log.uri },
    h('th', { scope: 'row' }, taskName),
    h('td', null, h('span', { class: `result result-${log.resultType.toLowerCase()}` }, log.resultType)),
    h('td', null, time(log.startDate)),
    h('td', null, time(log.finishDate)),
    h('td', { class: 'actions' }, h('div', { class: 'buttons' }, toggle, h('a', { href: log.contentUri, target: '_blank', rel: 'noopener' }, 'Open full log'))),
    h('td', { class: 'actions' }, h('button', { type: 'button', class: 'danger', 'data-key': `${log.uri} Delete`, onclick: () => deleteLog(log, taskName) }, 'Delete log')))
  return [row, logRow]
}

/** Render the Tasks panel from `state` (keeping the keyboard focus and the shown logs). */
export function renderTasks(): void {
  if (!tasksLoaded) return // the shell says "Loading…" until the first answer
  const restore = keepFocus()
  tails.clear()
  const active = state.tasks.filter((task) => task.state !== 'Idle')
  const idle = state.tasks.filter((task) => task.state === 'Idle')
  const finished = state.logs.filter((log) => log.resultType !== 'Incomplete')
  replace(byId('tasks-active'), active.length === 0
    ? h('p', { class: 'empty' }, 'No task is running.')
    : h('ul', { class: 'cards' }, active.map(activeCard)))
  replace(byId('tasks-idle'), idle.length === 0
    ? h('p', { class: 'empty' }, 'No idle tasks. Create one with "New task".')
    : table(['Name', 'Type', 'Object set', 'Stores', 'Last run', 'Actions'], idle.map(idleRow)))
  replace(byId('tasks-completed'), finished.length === 0
    ? h('p', { class: 'empty' }, 'No completed runs yet.')
    : table(['Task', 'Result', 'Started', 'Finished', 'Log', 'Actions'], ([] as HTMLElement[]).concat(...finished.map(logRows))))
  for (const uri of Array.from(tails.keys())) showTail(uri)
  restore()
}

/**
 * Open the task editor: new (no task) or edit (an idle task).
 *
 * @example
 * openTaskEditor(undefined, newTaskButton)
 */
export function openTaskEditor(task: CloudSyncTask | undefined, opener: HTMLElement | null): void {
  loadSetsAndStores().then(() => buildTaskEditor(task, opener), (err: unknown) => reportError(err, 'The sets and stores could not be loaded'))
}

function buildTaskEditor(task: CloudSyncTask | undefined, opener: HTMLElement | null): void {
  const container = byId('tasks-editor')
  if (state.sets.length === 0 || state.stores.length === 0) {
    notify('A task needs an object set and at least one object store: create them first (tabs "Object sets" and "Object stores").', 'error')
    return
  }
  const data = task ? parseJsonObject(task.data) || {} : {}
  const type = task ? task.type : 'copy'
  const sets = state.sets.map((s): [string, string] => [s.uri, s.name])
  const stores = state.stores.map((s): [string, string] => [s.uri, s.name])
  const str = (key: string): string | undefined => (typeof data[key] === 'string' ? (data[key] as string) : undefined)
  const typeGroup = h('fieldset', { class: 'choice' }, h('legend', null, 'What the task does'),
    h('label', null, h('input', { type: 'radio', name: 'type', value: 'copy', checked: type === 'copy' }), ' Copy objects between stores'),
    h('label', null, h('input', { type: 'radio', name: 'type', value: 'list', checked: type === 'list' }), ' List the objects of a set in a store'))
  const listPart = h('div', { class: 'part', 'data-for': 'list' },
    field('Store to list', select('storeUri', stores, 'Choose a store', str('storeUri'))))
  const copyPart = h('div', { class: 'part', 'data-for': 'copy' },
    field('Source store', select('sourceStoreUri', stores, 'Choose a store', str('sourceStoreUri')), 'Objects are read from here.'),
    field('Destination store', select('destStoreUri', stores, 'Choose a store', str('destStoreUri')), 'Objects are written here.'),
    field('Store that evaluates the set', select('queryStoreUri', stores, 'Same as the source store', str('queryStoreUri') === str('sourceStoreUri') ? '' : str('queryStoreUri')),
      'Usually the source store. Query sets need a Fedora repository.'),
    h('fieldset', { class: 'flags' }, h('legend', null, 'Copy options'),
      COPY_FLAGS.map(([name, label, def]) => checkbox(name, label, data[name] === undefined ? def : data[name] === true || data[name] === 'true'))))
  // The query store may stay "same as the source": that option must be submittable.
  const queryStore = copyPart.querySelector<HTMLSelectElement>('select[name=queryStoreUri]')!
  queryStore.required = false
  queryStore.options[0]!.disabled = false
  const nameOf = (list: Array<{ uri: string; name: string }>, uri: string): string => byUri(list, uri)?.name ?? ''
  let form: HTMLFormElement
  const name = suggestedName('Task name', () => {
    const t = valueOf(form, 'type')
    const source = valueOf(form, 'sourceStoreUri')
    return suggestTaskName(t, nameOf(state.sets, valueOf(form, 'setUri')), t === 'list'
      ? [nameOf(state.stores, valueOf(form, 'storeUri'))]
      : [nameOf(state.stores, valueOf(form, 'queryStoreUri') || source), nameOf(state.stores, source), nameOf(state.stores, valueOf(form, 'destStoreUri'))])
  }, task?.name)
  const runNow = task ? null : checkbox('runNow', 'Run the task as soon as it is created', true)
  const showPart = (): void => showOnly([listPart, copyPart], valueOf(form, 'type'))
  form = openEditor(container, opener, {
    title: task ? `Edit task "${task.name}"` : 'New task',
    submitLabel: task ? 'Save changes' : 'Create task',
    failure: task ? 'The task was not saved' : 'The task was not created',
    fields: [typeGroup, field('Object set', select('setUri', sets, 'Choose an object set', str('setUri') ?? (task ? undefined : sets[0]?.[0]))), listPart, copyPart, name.field, runNow],
    submit: (f) => {
      const t = valueOf(f, 'type')
      const setUri = valueOf(f, 'setUri')
      let taskData: Record<string, string>
      if (t === 'list') taskData = { setUri, storeUri: valueOf(f, 'storeUri') }
      else {
        const source = valueOf(f, 'sourceStoreUri')
        taskData = { setUri, queryStoreUri: valueOf(f, 'queryStoreUri') || source, sourceStoreUri: source, destStoreUri: valueOf(f, 'destStoreUri') }
        for (const [flag] of COPY_FLAGS) taskData[flag] = valueOf(f, flag)
      }
      const fields = { name: valueOf(f, 'name'), type: t, data: JSON.stringify(taskData) }
      if (task) {
        return state.client.promises.updateTask(task.uri, { task: fields }).then(() => {
          taskPoller.hurry()
          return `Task "${fields.name}" saved.`
        })
      }
      const run = valueOf(f, 'runNow') === 'true'
      return state.client.promises.createTask({ task: { ...fields, state: run ? 'Starting' : 'Idle' } }).then(() => {
        taskPoller.hurry()
        return run ? `Task "${fields.name}" created and started.` : `Task "${fields.name}" created.`
      })
    }
  })
  form.addEventListener('change', () => {
    showPart()
    name.update()
  })
  showPart()
  name.update()
}
