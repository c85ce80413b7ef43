/**
 * Users in a real Chromium: an administrator manages users (create,
 * promote/demote, enable/disable, delete) and cannot demote, disable or
 * delete themselves; a non-administrator sees no Users tab, changes their
 * password (and is logged out), and loses access when disabled. Also the
 * keyboard navigation of the tabs.
 */
import t from 'tap'
import type { Page } from 'playwright-core'
import { ADMIN, launchBrowser, logIn, openPage, openUi, screenshot, startUiServer, unlabelled } from './browser.js'

const browser = await launchBrowser(t)

function row(page: Page, name: string) {
  return page.locator('#users-list tbody tr', { has: page.locator('th', { hasText: new RegExp(`^${name}( \\(you\\))?$`) }) })
}

async function createUser(page: Page, name: string, password: string, confirm = password): Promise<void> {
  await page.getByRole('button', { name: 'New user' }).click()
  await page.getByLabel('User name', { exact: true }).fill(name)
  await page.getByLabel('Password', { exact: true }).fill(password)
  await page.getByLabel('Repeat the password', { exact: true }).fill(confirm)
  await page.getByRole('button', { name: 'Create user' }).click()
}

t.test('an administrator manages users; a user manages their password', async (t) => {
  const server = await startUiServer(t)
  const admin = await openPage(browser, t)
  const page = admin.page
  await openUi(page, server.base)
  await page.getByRole('tab', { name: 'Users' }).click()
  const me = row(page, 'admin')
  await me.waitFor()
  t.match(await me.innerText(), /admin \(you\)\s+Administrator\s+Enabled/)
  t.same(await me.getByRole('button').allInnerTexts(), [], 'no demote, disable or delete for oneself (spec §7.3)')
  t.match(await me.innerText(), 'You cannot demote, disable or delete yourself.')

  // Create: a mismatch is caught in the form; a taken name is the server's refusal.
  await createUser(page, 'bob', 'bob-pass-1', 'bob-pass-2')
  t.match(await page.locator('#users-editor .form-error').innerText(), 'The two passwords differ')
  t.same(await unlabelled(page), [], 'every field and button of the Users panel is named')
  await page.getByLabel('Repeat the password', { exact: true }).fill('bob-pass-1')
  await page.getByRole('button', { name: 'Create user' }).click()
  await row(page, 'bob').waitFor()
  t.match(await row(page, 'bob').innerText(), /bob\s+User\s+Enabled/)
  await createUser(page, 'bob', 'other-pass')
  await page.locator('#users-editor .form-error', { hasText: 'The user was not created' }).waitFor()
  t.notMatch(await page.locator('#users-editor .form-error').innerText(), /HTTP/, 'a sentence from the server, not a status code')
  await page.getByRole('button', { name: 'Cancel' }).click()

  // Promote, demote, disable, enable.
  const bob = row(page, 'bob')
  await bob.getByRole('button', { name: 'Make administrator' }).click()
  await bob.filter({ hasText: 'Administrator' }).waitFor()
  t.equal((await server.handler.backend.getUser(2))?.admin, true)
  await bob.getByRole('button', { name: 'Remove administrator' }).click()
  await bob.getByRole('button', { name: 'Make administrator' }).waitFor()
  await bob.getByRole('button', { name: 'Disable' }).click()
  await bob.filter({ hasText: 'Disabled' }).waitFor()
  await bob.getByRole('button', { name: 'Enable' }).click()
  await bob.getByRole('button', { name: 'Disable' }).waitFor()
  t.same(await bob.getByRole('button').allInnerTexts(), ['Make administrator', 'Disable', 'Delete'])

  // Delete another user.
  await createUser(page, 'carol', 'carol-pass')
  await row(page, 'carol').waitFor()
  page.once('dialog', (dialog) => void dialog.accept())
  await row(page, 'carol').getByRole('button', { name: 'Delete' }).click()
  await row(page, 'carol').waitFor({ state: 'detached' })
  t.equal((await server.handler.backend.listUsers()).length, 2)
  await screenshot(page, 'users')

  // Bob: no Users tab; the tabs are reachable with the arrow keys.
  const other = await openPage(browser, t)
  const bobPage = other.page
  await openUi(bobPage, server.base, ['bob', 'bob-pass-1'])
  t.equal(await bobPage.getByRole('tab', { name: 'Users' }).isHidden(), true, 'no Users tab for a non-administrator (spec §7.3)')
  await bobPage.getByRole('tab', { name: 'Tasks' }).focus()
  await bobPage.keyboard.press('ArrowRight')
  t.equal(await bobPage.evaluate(() => document.activeElement?.textContent), 'Object sets', 'ArrowRight moves to the next tab')
  t.equal(await bobPage.getByRole('tab', { name: 'Object sets' }).getAttribute('aria-selected'), 'true')
  t.equal(await bobPage.locator('#panel-sets').isVisible(), true)
  await bobPage.keyboard.press('End')
  t.equal(await bobPage.evaluate(() => document.activeElement?.textContent), 'Account')
  await bobPage.keyboard.press('ArrowLeft')
  t.equal(await bobPage.evaluate(() => document.activeElement?.textContent), 'Object stores', 'the hidden Users tab is skipped')
  await bobPage.keyboard.press('Home')
  t.equal(await bobPage.evaluate(() => document.activeElement?.textContent), 'Tasks')
  await bobPage.goto(`${server.base}/#users`)
  await bobPage.waitForSelector('body.ready')
  t.equal(await bobPage.locator('#panel-users').isHidden(), true, '#users does not open the Users panel for a non-administrator')

  // Bob changes his password: logged out, then only the new one works.
  await bobPage.getByRole('tab', { name: 'Account' }).click()
  t.match(await bobPage.locator('#account-body').innerText(), 'Signed in as bob.')
  await bobPage.getByLabel('New password', { exact: true }).fill('bob-new-pass')
  await bobPage.getByLabel('Repeat the new password', { exact: true }).fill('bob-new-pass')
  await bobPage.getByRole('button', { name: 'Change password' }).click()
  await bobPage.locator('#cs-notices', { hasText: 'Your password has been changed' }).waitFor()
  await bobPage.waitForURL((url) => url.pathname === '/login')
  await bobPage.getByLabel('User name').fill('bob')
  await bobPage.getByLabel('Password', { exact: true }).fill('bob-pass-1')
  await bobPage.getByRole('button', { name: 'Log in' }).click()
  await bobPage.getByRole('alert').filter({ hasText: 'Login failed' }).waitFor()
  await logIn(bobPage, server.base, ['bob', 'bob-new-pass'])
  await bobPage.waitForSelector('body.ready')

  // The administrator disables Bob: Bob's next request ends his session.
  await page.getByRole('tab', { name: 'Users' }).click()
  await bob.getByRole('button', { name: 'Disable' }).click()
  await bob.filter({ hasText: 'Disabled' }).waitFor()
  await bobPage.getByRole('tab', { name: 'Object stores' }).click()
  await bobPage.locator('#cs-notices [role=alert]', { hasText: 'Your session has expired' }).waitFor()
  await bobPage.waitForURL((url) => url.pathname === '/login')
  t.same(admin.errors, [], 'no script errors (administrator)')
  t.same(other.errors, [], 'no script errors (user)')
})

t.test('an administrator can change their own password too', async (t) => {
  const server = await startUiServer(t)
  const { page } = await openPage(browser, t)
  await openUi(page, server.base)
  await page.getByRole('tab', { name: 'Account' }).click()
  await page.getByLabel('New password', { exact: true }).fill('new-admin-pass')
  await page.getByLabel('Repeat the new password', { exact: true }).fill('typo')
  await page.getByRole('button', { name: 'Change password' }).click()
  t.match(await page.locator('#account-body .form-error').innerText(), 'The two passwords differ')
  t.same(await unlabelled(page), [], 'every field and link of the Account panel is named')
  await page.getByLabel('Repeat the new password', { exact: true }).fill('new-admin-pass')
  await page.getByRole('button', { name: 'Change password' }).click()
  await page.waitForURL((url) => url.pathname === '/login')
  await openUi(page, server.base, [ADMIN[0], 'new-admin-pass'])
  t.pass('logged in with the new password')
})
