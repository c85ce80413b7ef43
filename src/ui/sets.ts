/**
 * CloudSync default UI — the Object sets panel: PID patterns, PID lists and
 * Resource Index queries (spec §4.4); create, edit, delete.
 */
/// <reference path="../../dist/public/js/cloudsync-api.d.ts" />
import { field, h, keepFocus, replace, byId, select, showOnly, table } from './dom.js'
import { openEditor, valueOf } from './forms.js'
import { listsLoaded, loadSetsAndStores } from './lists.js'
import { notify, reportError } from './notices.js'
import { state } from './state.js'
import { describeSet, parseJsonObject } from './text.js'

const SET_TYPES: Array<[string, string]> = [
  ['pidPattern', 'PID pattern'],
  ['pidList', 'PID list'],
  ['query', 'Resource Index query']
]

function typeLabel(type: string): string {
  for (const [value, label] of SET_TYPES) if (value === type) return label
  return type
}

function deleteSet(set: CloudSyncObjectSet): void {
  if (!window.confirm(`Delete the object set "${set.name}"?`)) return
  state.client.promises.deleteObjectSet(set.uri).then(() => {
    notify(`Object set "${set.name}" deleted.`, 'info')
    return loadSetsAndStores()
  }).then(undefined, (err: unknown) => reportError(err, `The object set "${set.name}" was not deleted`))
}

/** Render the Object sets panel from `state`. */
export function renderSets(): void {
  if (!listsLoaded()) return
  const restore = keepFocus()
  replace(byId('sets-list'), state.sets.length === 0
    ? h('p', { class: 'empty' }, 'No object sets.')
    : table(['Name', 'Type', 'Objects', 'Actions'], state.sets.map((set) => h('tr', { 'data-set': set.uri },
      h('th', { scope: 'row' }, set.name),
      h('td', null, typeLabel(set.type)),
      h('td', { class: 'data' }, describeSet(set)),
      h('td', { class: 'actions' }, h('div', { class: 'buttons', role: 'group', 'aria-label': `Actions for ${set.name}` },
        h('button', { type: 'button', 'data-key': `${set.uri} Edit`, onclick: (e: Event) => openSetEditor(set, e.currentTarget as HTMLElement) }, 'Edit'),
        h('button', { type: 'button', class: 'danger', 'data-key': `${set.uri} Delete`, onclick: () => deleteSet(set) }, 'Delete')))))))
  restore()
}

/**
 * Open the set editor: new (no set) or edit.
 *
 * @example
 * openSetEditor(undefined, newSetButton)
 */
export function openSetEditor(set: CloudSyncObjectSet | undefined, opener: HTMLElement | null): void {
  const type = set ? set.type : 'pidPattern'
  const query = set && set.type === 'query' ? parseJsonObject(set.data) || {} : {}
  const typeGroup = h('fieldset', { class: 'choice' }, h('legend', null, 'Kind of set'),
    SET_TYPES.map(([value, label]) => h('label', null, h('input', { type: 'radio', name: 'type', value, checked: value === type }), ' ', label)))
  const parts = [
    h('div', { class: 'part', 'data-for': 'pidPattern' }, field('Pattern',
      h('input', { name: 'pattern', type: 'text', required: true, maxlength: 32672, autocomplete: 'off', spellcheck: 'false', value: set && set.type === 'pidPattern' ? set.data : '*' }),
      '* matches any run of characters: "demo:*" is every object of the demo namespace, "*" every object.')),
    h('div', { class: 'part', 'data-for': 'pidList' }, field('PIDs',
      h('textarea', { name: 'pids', rows: 6, required: true, spellcheck: 'false', value: set && set.type === 'pidList' ? set.data : '' }),
      'One PID per line, e.g. demo:1.')),
    h('div', { class: 'part', 'data-for': 'query' },
      field('Query language', select('queryType', [['SPARQL', 'SPARQL'], ['iTQL', 'iTQL']], null, typeof query.queryType === 'string' ? query.queryType : 'SPARQL')),
      field('Query', h('textarea', { name: 'queryText', rows: 5, required: true, spellcheck: 'false', value: typeof query.queryText === 'string' ? query.queryText : '' }),
        'The first column of each result row is the object, as info:fedora/<pid>. Only Fedora repositories can evaluate queries.'))
  ]
  const nameInput = h('input', { name: 'name', type: 'text', required: true, maxlength: 256, autocomplete: 'off', value: set ? set.name : '' })
  const form = openEditor(byId('sets-editor'), opener, {
    title: set ? `Edit object set "${set.name}"` : 'New object set',
    submitLabel: set ? 'Save changes' : 'Create object set',
    failure: set ? 'The object set was not saved' : 'The object set was not created',
    fields: [field('Name', nameInput), typeGroup, parts],
    submit: (f) => {
      const t = valueOf(f, 'type')
      const data = t === 'pidPattern' ? valueOf(f, 'pattern')
        : t === 'pidList' ? valueOf(f, 'pids')
          : JSON.stringify({ queryType: valueOf(f, 'queryType'), queryText: valueOf(f, 'queryText') })
      const fields = { name: valueOf(f, 'name'), type: t, data }
      const sent = set
        ? state.client.promises.updateObjectSet(set.uri, { objectSet: fields }).then(() => `Object set "${fields.name}" saved.`)
        : state.client.promises.createObjectSet({ objectSet: fields }).then(() => `Object set "${fields.name}" created.`)
      return sent.then((message) => loadSetsAndStores().then(() => message, () => message))
    }
  })
  const showPart = (): void => showOnly(parts, valueOf(form, 'type'))
  form.addEventListener('change', showPart)
  showPart()
}
