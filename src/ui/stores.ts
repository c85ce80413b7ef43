/**
 * CloudSync default UI — the Object stores panel: filesystem directories,
 * Fedora repositories and DuraCloud spaces (spec §4.5); create and delete
 * (stores cannot be edited). The DuraCloud form fills its account and space
 * choices from the server's look-ups (`listProviderAccounts`, `listSpaces`).
 */
/// <reference path="../../dist/public/js/cloudsync-api.d.ts" />
import { byId, field, h, keepFocus, replace, showOnly, table } from './dom.js'
import type { Attrs } from './dom.js'
import { openEditor, suggestedName, valueOf } from './forms.js'
import { listsLoaded, loadSetsAndStores } from './lists.js'
import { detailOf, isFatal, notify, reportError } from './notices.js'
import { state } from './state.js'
import { describeStore, duraCloudUrl, suggestStoreName } from './text.js'
import type { StoreNameInput } from './text.js'

const STORE_TYPES: Array<[string, string]> = [
  ['filesystem', 'Local directory'],
  ['fedora', 'Fedora repository'],
  ['duracloud', 'DuraCloud space']
]

function deleteStore(store: CloudSyncObjectStore): void {
  if (!window.confirm(`Delete the object store "${store.name}"? The objects in it are not touched.`)) return
  state.client.promises.deleteObjectStore(store.uri).then(() => {
    notify(`Object store "${store.name}" deleted.`, 'info')
    return loadSetsAndStores()
  }).then(undefined, (err: unknown) => reportError(err, `The object store "${store.name}" was not deleted`))
}

/** Render the Object stores panel from `state`. */
export function renderStores(): void {
  if (!listsLoaded()) return
  const restore = keepFocus()
  const label = (type: string): string => (STORE_TYPES.filter(([value]) => value === type)[0] || [type, type])[1]
  replace(byId('stores-list'), state.stores.length === 0
    ? h('p', { class: 'empty' }, 'No object stores yet. Add the places objects are copied from and to with "New object store".')
    : table(['Name', 'Type', 'Location', 'Actions'], state.stores.map((store) => h('tr', { 'data-store': store.uri },
      h('th', { scope: 'row' }, store.name),
      h('td', null, label(store.type)),
      h('td', { class: 'data' }, describeStore(store)),
      h('td', null, h('button', { type: 'button', class: 'danger', 'data-key': `${store.uri} Delete`, 'aria-label': `Delete ${store.name}`, onclick: () => deleteStore(store) }, 'Delete'))))))
  restore()
}

function textInput(name: string, attrs: Attrs = {}): HTMLInputElement {
  return h('input', { name, type: 'text', autocomplete: 'off', spellcheck: 'false', ...attrs })
}

/**
 * Open the "new object store" editor.
 *
 * @example
 * openStoreEditor(newStoreButton)
 */
export function openStoreEditor(opener: HTMLElement | null): void {
  const typeGroup = h('fieldset', { class: 'choice' }, h('legend', null, 'Kind of store'),
    STORE_TYPES.map(([value, label], i) => h('label', null, h('input', { type: 'radio', name: 'type', value, checked: i === 0 }), ' ', label)))

  // DuraCloud: accounts and spaces come from the look-ups.
  const lookupStatus = h('p', { class: 'lookup-status', role: 'status' })
  const accounts = h('select', { name: 'providerId', required: true, disabled: true }, h('option', { value: '' }, 'Find the accounts first'))
  const spaces = h('select', { name: 'space', required: true, disabled: true }, h('option', { value: '' }, 'Choose an account first'))
  const findButton = h('button', { type: 'button' }, 'Find accounts and spaces')

  const parts = [
    h('div', { class: 'part', 'data-for': 'filesystem' },
      field('Directory on the server', textInput('path', { required: true, placeholder: '/srv/cloudsync/backup' }),
        'An absolute path inside the directories this server allows for stores; it is created if needed.')),
    h('div', { class: 'part', 'data-for': 'fedora' },
      field('Fedora base URL', textInput('fedoraUrl', { type: 'url', required: true, placeholder: 'http://repository.example.org:8080/fedora' })),
      field('User name', textInput('fedoraUser', { required: true, autocomplete: 'off' })),
      field('Password', h('input', { name: 'fedoraPassword', type: 'password', required: true, autocomplete: 'new-password' }))),
    h('div', { class: 'part', 'data-for': 'duracloud' },
      field('DuraCloud host or DuraStore URL', textInput('dcUrl', { required: true, placeholder: 'demo.duracloud.org' }),
        'A host name such as demo.duracloud.org stands for https://demo.duracloud.org/durastore.'),
      field('User name', textInput('dcUser', { required: true })),
      field('Password', h('input', { name: 'dcPassword', type: 'password', required: true, autocomplete: 'new-password' })),
      h('div', { class: 'buttons' }, findButton), lookupStatus,
      field('Storage provider account', accounts),
      field('Space', spaces),
      field('Content id prefix (optional)', textInput('prefix', { placeholder: 'fedora/' }), 'Objects are stored under this prefix inside the space.'))
  ]
  const read = (f: HTMLFormElement): StoreNameInput => {
    const account = accounts.selectedOptions[0]
    return {
      type: valueOf(f, 'type'),
      path: valueOf(f, 'path'),
      url: valueOf(f, 'type') === 'fedora' ? valueOf(f, 'fedoraUrl') : duraCloudUrl(valueOf(f, 'dcUrl')),
      space: spaces.disabled ? '' : spaces.value,
      prefix: valueOf(f, 'prefix'),
      providerName: account ? account.getAttribute('data-type') || '' : ''
    }
  }
  let form: HTMLFormElement
  const name = suggestedName('Store name', () => suggestStoreName(read(form)))
  form = openEditor(byId('stores-editor'), opener, {
    title: 'New object store',
    submitLabel: 'Create object store',
    failure: 'The object store was not created',
    fields: [typeGroup, parts, name.field],
    submit: (f) => {
      const type = valueOf(f, 'type')
      let data: Record<string, string>
      if (type === 'filesystem') data = { path: valueOf(f, 'path') }
      else if (type === 'fedora') data = { url: valueOf(f, 'fedoraUrl'), username: valueOf(f, 'fedoraUser'), password: valueOf(f, 'fedoraPassword') }
      else {
        if (accounts.disabled || spaces.disabled || spaces.value === '') {
          return Promise.reject(new Error('Find the accounts and spaces with the button, then choose a space.'))
        }
        const input = read(f)
        data = {
          url: input.url || '', username: valueOf(f, 'dcUser'), password: valueOf(f, 'dcPassword'),
          providerId: accounts.value, providerName: input.providerName || '', space: spaces.value, prefix: input.prefix || ''
        }
      }
      const storeName = valueOf(f, 'name')
      return state.client.promises.createObjectStore({ objectStore: { name: storeName, type, data: JSON.stringify(data) } })
        .then(() => loadSetsAndStores().then(() => undefined, () => undefined))
        .then(() => `Object store "${storeName}" created.`)
    }
  })

  const credentials = (): [string, string, string] => [duraCloudUrl(valueOf(form, 'dcUrl')), valueOf(form, 'dcUser'), valueOf(form, 'dcPassword')]
  const lookupFailed = (what: string) => (err: unknown): void => {
    if (isFatal(err)) {
      CloudSyncClient.handleError(err)
      return
    }
    lookupStatus.textContent = `${what}: ${detailOf(err)}`
    lookupStatus.className = 'lookup-status failed'
  }
  const findSpaces = (): void => {
    const [url, user, password] = credentials()
    spaces.disabled = true
    replace(spaces, h('option', { value: '' }, 'Loading spaces…'))
    state.client.promises.listSpaces(url, user, password, accounts.value).then((data) => {
      replace(spaces, data.spaces.length === 0 ? h('option', { value: '' }, 'This account has no spaces') : data.spaces.map((s) => h('option', { value: s.id }, s.id)))
      spaces.disabled = data.spaces.length === 0
      lookupStatus.className = 'lookup-status'
      lookupStatus.textContent = `${data.spaces.length} space${data.spaces.length === 1 ? '' : 's'} in account ${accounts.value}.`
      name.update()
    }, lookupFailed('The spaces could not be listed'))
  }
  findButton.addEventListener('click', () => {
    const [url, user, password] = credentials()
    if (url === '' || user === '' || password === '') {
      lookupStatus.className = 'lookup-status failed'
      lookupStatus.textContent = 'Enter the host, user name and password first.'
      return
    }
    lookupStatus.className = 'lookup-status'
    lookupStatus.textContent = 'Looking up the accounts…'
    state.client.promises.listProviderAccounts(url, user, password).then((data) => {
      const list = data.providerAccounts.slice().sort((a, b) => Number(b.primary) - Number(a.primary))
      replace(accounts, list.map((a) => h('option', { value: a.id, 'data-type': a.type }, `${a.type} (account ${a.id}${a.primary ? ', primary' : ''})`)))
      accounts.disabled = list.length === 0
      if (list.length === 0) {
        lookupStatus.textContent = 'This DuraCloud user has no storage provider accounts.'
        return
      }
      findSpaces()
    }, lookupFailed('The accounts could not be listed'))
  })
  accounts.addEventListener('change', findSpaces)

  const showPart = (): void => {
    showOnly(parts, valueOf(form, 'type'))
    // The look-up results stay disabled until the look-up has filled them.
    if (accounts.options.length === 0 || accounts.options[0]!.value === '') accounts.disabled = true
    if (spaces.options.length === 0 || spaces.options[0]!.value === '') spaces.disabled = true
  }
  form.addEventListener('change', () => {
    showPart()
    name.update()
  })
  form.addEventListener('input', name.update)
  showPart()
  name.update()
}
