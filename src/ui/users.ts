/**
 * CloudSync default UI — users (spec §4.3, §7.3). Administrators get the
 * Users panel: create, promote/demote, enable/disable, delete. Nobody may
 * demote, disable or delete themselves, so those actions are not offered on
 * one's own row (matched by `uri`); anything else the server refuses is
 * shown with its explanation. Every user can change their own password in
 * the Account panel and is then logged out.
 */
/// <reference path="../../dist/public/js/cloudsync-api.d.ts" />
import { byId, checkbox, field, h, keepFocus, replace, table } from './dom.js'
import { openEditor, valueOf } from './forms.js'
import { detailOf, isFatal, notify, reportError } from './notices.js'
import { same, state } from './state.js'

let usersLoaded = false

/** Re-reads the user list (admins only). */
export function loadUsers(): Promise<boolean> {
  if (!state.me.admin) return Promise.resolve(false)
  return state.client.promises.listUsers().then((data) => {
    if (!usersLoaded || !same(state.users, data.users)) {
      usersLoaded = true
      state.users = data.users
      renderUsers()
    }
    return false
  })
}

function patchUser(user: CloudSyncUser, fields: Record<string, string>, done: string, failure: string): void {
  // The default UI sends booleans as "true"/"false" strings (spec §3.13).
  state.client.promises.updateUser(user.uri, { user: fields }).then(() => {
    notify(done, 'info')
    return loadUsers()
  }).then(undefined, (err: unknown) => reportError(err, failure))
}

function deleteUser(user: CloudSyncUser): void {
  if (!window.confirm(`Delete the user "${user.name}"? They lose access at once.`)) return
  state.client.promises.deleteUser(user.uri).then(() => {
    notify(`User "${user.name}" deleted.`, 'info')
    return loadUsers()
  }).then(undefined, (err: unknown) => reportError(err, `The user "${user.name}" was not deleted`))
}

function userRow(user: CloudSyncUser): HTMLElement {
  const self = user.uri === state.me.uri
  const key = (action: string): string => `${user.uri} ${action}`
  const actions: HTMLElement[] = []
  if (!user.admin) {
    actions.push(h('button', { type: 'button', 'data-key': key('Promote'), onclick: () => patchUser(user, { admin: 'true' }, `"${user.name}" is now an administrator.`, `"${user.name}" was not promoted`) }, 'Make administrator'))
  } else if (!self) {
    actions.push(h('button', { type: 'button', 'data-key': key('Demote'), onclick: () => patchUser(user, { admin: 'false' }, `"${user.name}" is no longer an administrator.`, `"${user.name}" was not demoted`) }, 'Remove administrator'))
  }
  if (!user.enabled) {
    actions.push(h('button', { type: 'button', 'data-key': key('Enable'), onclick: () => patchUser(user, { enabled: 'true' }, `"${user.name}" can log in again.`, `"${user.name}" was not enabled`) }, 'Enable'))
  } else if (!self) {
    actions.push(h('button', { type: 'button', 'data-key': key('Disable'), onclick: () => patchUser(user, { enabled: 'false' }, `"${user.name}" can no longer log in.`, `"${user.name}" was not disabled`) }, 'Disable'))
  }
  if (!self) actions.push(h('button', { type: 'button', class: 'danger', 'data-key': key('Delete'), onclick: () => deleteUser(user) }, 'Delete'))
  return h('tr', { 'data-user': user.uri },
    h('th', { scope: 'row' }, user.name, self ? h('span', { class: 'you' }, ' (you)') : null),
    h('td', null, user.admin ? 'Administrator' : 'User'),
    h('td', null, user.enabled ? 'Enabled' : h('span', { class: 'disabled' }, 'Disabled')),
    h('td', { class: 'actions' }, h('div', { class: 'buttons', role: 'group', 'aria-label': `Actions for ${user.name}` }, actions,
      self ? h('span', { class: 'hint' }, 'You cannot demote, disable or delete yourself.') : null)))
}

/** Render the Users panel from `state`. */
export function renderUsers(): void {
  const restore = keepFocus()
  replace(byId('users-list'), table(['Name', 'Role', 'Status', 'Actions'], state.users.map(userRow)))
  restore()
}

/**
 * Open the "new user" editor.
 *
 * @example
 * openUserEditor(newUserButton)
 */
export function openUserEditor(opener: HTMLElement | null): void {
  const password = h('input', { name: 'password', type: 'password', required: true, autocomplete: 'new-password' })
  const confirm = h('input', { name: 'confirm', type: 'password', required: true, autocomplete: 'new-password' })
  openEditor(byId('users-editor'), opener, {
    title: 'New user',
    submitLabel: 'Create user',
    failure: 'The user was not created',
    fields: [
      field('User name', h('input', { name: 'name', type: 'text', required: true, maxlength: 64, autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false' })),
      field('Password', password),
      field('Repeat the password', confirm),
      h('fieldset', { class: 'flags' }, h('legend', null, 'Access'),
        checkbox('enabled', 'Can log in', true),
        checkbox('admin', 'Administrator (manages users)', false))
    ],
    submit: (f) => {
      if (password.value !== confirm.value) return Promise.reject(new Error('The two passwords differ; type the same password twice.'))
      const name = valueOf(f, 'name')
      // A new user is sent with JSON booleans, as the original UI did (spec §3.13).
      return state.client.promises.createUser({ user: { name, password: password.value, enabled: valueOf(f, 'enabled') === 'true', admin: valueOf(f, 'admin') === 'true' } })
        .then(() => loadUsers().then(() => undefined, () => undefined))
        .then(() => `User "${name}" created.`)
    }
  })
}

/**
 * Fill the Account panel: who is signed in, and the password form. A
 * changed password ends the session (spec §7.3): the person logs in again
 * with the new one.
 *
 * @example
 * renderAccount()
 */
export function renderAccount(): void {
  const me = state.me
  const password = h('input', { name: 'password', type: 'password', required: true, autocomplete: 'new-password' })
  const confirm = h('input', { name: 'confirm', type: 'password', required: true, autocomplete: 'new-password' })
  const error = h('p', { class: 'form-error', role: 'alert' })
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Change password')
  const form = h('form', { class: 'editor-form', 'aria-labelledby': 'account-password-heading' },
    field('New password', password), field('Repeat the new password', confirm), error,
    h('div', { class: 'buttons' }, submit))
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    error.textContent = ''
    if (!form.reportValidity()) return
    if (password.value !== confirm.value) {
      error.textContent = 'The two passwords differ; type the same password twice.'
      return
    }
    submit.disabled = true
    state.client.promises.updateUser(me.uri, { user: { password: password.value } }).then(() => {
      notify('Your password has been changed. Log in again with the new password.', 'info')
      window.setTimeout(logout, 1200)
    }, (err: unknown) => {
      submit.disabled = false
      if (isFatal(err)) CloudSyncClient.handleError(err)
      else error.textContent = `The password was not changed: ${detailOf(err)}`
    })
  })
  const api = state.client.info
  const links: Array<[string, string]> = [['Service', state.client.serviceUri], ['Users', api.usersUri], ['Tasks', api.tasksUri],
    ['Task logs', api.taskLogsUri], ['Object sets', api.objectSetsUri], ['Object stores', api.objectStoresUri]]
  replace(byId('account-body'),
    h('p', null, 'Signed in as ', h('strong', null, me.name), me.admin ? ' (administrator).' : '.'),
    h('h3', { id: 'account-password-heading' }, 'Change your password'),
    form,
    h('h3', null, 'Browse the API'),
    h('p', null, 'The same data as JSON or XML, readable in the browser while you are logged in:'),
    h('ul', { class: 'api-links' }, links.map(([label, uri]) => h('li', null, `${label}: `,
      h('a', { href: `${uri}.json` }, 'JSON'), ' · ', h('a', { href: `${uri}.xml` }, 'XML')))),
    h('p', { class: 'meta' }, `CloudSync ${api.version} (built ${api.buildDate}).`))
}

/**
 * Log out: post the header's logout form (the server ends the session and
 * shows the login page).
 *
 * @example
 * logout()
 */
export function logout(): void {
  const form = document.getElementById('cs-logout')
  if (form instanceof HTMLFormElement) form.submit()
  else location.reload()
}
