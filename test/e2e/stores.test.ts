/**
 * The object-store forms in a real Chromium: the Fedora form, and the
 * DuraCloud form whose account and space choices come from the server's
 * look-ups against a (local, real HTTP) DuraStore; name suggestions of spec
 * §7.3; passwords never shown again.
 */
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Locator, Page } from 'playwright-core'
import { launchBrowser, openPage, openUi, screenshot, startUiServer, unlabelled } from './browser.js'

const browser = await launchBrowser(t)

/** The fields of one store type in the open editor (the others are hidden). */
function part(page: Page, type: string): Locator {
  return page.locator(`#stores-editor [data-for=${type}]`)
}
const AUTH = 'Basic ' + Buffer.from('dc-user:dc-pass').toString('base64')

/** A DuraStore with two provider accounts and a few spaces, behind HTTP Basic. */
async function startDuraStore(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (req.headers.authorization !== AUTH) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="DuraStore"' })
      return res.end()
    }
    res.setHeader('Content-Type', 'application/xml')
    if (url.pathname === '/durastore/stores') {
      return res.end('<storageProviderAccounts>\n  <storageAcct isPrimary="0"><id>1</id><storageProviderType>RACKSPACE</storageProviderType></storageAcct>\n  <storageAcct isPrimary="1"><id>0</id><storageProviderType>AMAZON_S3</storageProviderType></storageAcct>\n</storageProviderAccounts>')
    }
    if (url.pathname === '/durastore/spaces') {
      const spaces = url.searchParams.get('storeID') === '0' ? ['fedora-backups', 'images'] : ['rack-only']
      return res.end(`<spaces>${spaces.map((id) => `<space id="${id}"/>`).join('\n')}</spaces>`)
    }
    res.writeHead(404)
    res.end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return `127.0.0.1:${(server.address() as AddressInfo).port}`
}

t.test('Fedora and DuraCloud stores made in the UI', async (t) => {
  const server = await startUiServer(t)
  const duraHost = await startDuraStore(t)
  const { page, errors } = await openPage(browser, t)
  await openUi(page, server.base)
  await page.getByRole('tab', { name: 'Object stores' }).click()
  await page.locator('#stores-list', { hasText: 'No object stores yet' }).waitFor()

  // Fedora: the name follows the URL's host (spec §7.3); nothing is contacted.
  await page.getByRole('button', { name: 'New object store' }).click()
  await page.getByRole('radio', { name: 'Fedora repository' }).check()
  t.equal(await page.getByLabel('Directory on the server', { exact: true }).isHidden(), true, 'only the Fedora fields are shown')
  await page.getByLabel('Fedora base URL', { exact: true }).fill('http://repo.example.org:8080/fedora')
  await part(page, 'fedora').getByLabel('User name', { exact: true }).fill('fedoraAdmin')
  await part(page, 'fedora').getByLabel('Password', { exact: true }).fill('fedora-secret')
  t.equal(await page.getByLabel('Store name', { exact: true }).inputValue(), 'Fedora Repository at repo.example.org:8080')
  await page.getByRole('button', { name: 'Create object store' }).click()
  const fedora = page.locator('#stores-list tbody tr', { hasText: 'Fedora Repository at repo.example.org:8080' })
  await fedora.waitFor()
  t.match(await fedora.innerText(), 'http://repo.example.org:8080/fedora as fedoraAdmin')
  t.notMatch(await page.content(), 'fedora-secret', 'the password is not shown again')

  // DuraCloud: a bare host stands for https://<host>/durastore; this one speaks plain HTTP, so the look-up fails readably.
  await page.getByRole('button', { name: 'New object store' }).click()
  await page.getByRole('radio', { name: 'DuraCloud space' }).check()
  await page.getByLabel('DuraCloud host or DuraStore URL', { exact: true }).fill(duraHost)
  await part(page, 'duracloud').getByLabel('User name', { exact: true }).fill('dc-user')
  await part(page, 'duracloud').getByLabel('Password', { exact: true }).fill('dc-pass')
  await page.getByRole('button', { name: 'Find accounts and spaces' }).click()
  const status = page.locator('#stores-editor .lookup-status')
  await status.filter({ hasText: 'The accounts could not be listed' }).waitFor()
  t.notMatch(await status.innerText(), /HTTP 502$/, 'the server explains the failure')
  t.equal(await page.getByLabel('Storage provider account', { exact: true }).isDisabled(), true)

  // The full URL works: accounts (primary first), then that account's spaces.
  await page.getByLabel('DuraCloud host or DuraStore URL', { exact: true }).fill(`http://${duraHost}/durastore`)
  await page.getByRole('button', { name: 'Find accounts and spaces' }).click()
  await status.filter({ hasText: '2 spaces in account 0.' }).waitFor()
  const accounts = page.getByLabel('Storage provider account', { exact: true })
  t.same(await accounts.locator('option').allInnerTexts(), ['AMAZON_S3 (account 0, primary)', 'RACKSPACE (account 1)'])
  const spaces = page.getByLabel('Space', { exact: true })
  t.same(await spaces.locator('option').allInnerTexts(), ['fedora-backups', 'images'])
  t.same(await unlabelled(page), [], 'every field of the DuraCloud form has a label')
  await accounts.selectOption('1')
  await status.filter({ hasText: '1 space in account 1.' }).waitFor()
  t.same(await spaces.locator('option').allInnerTexts(), ['rack-only'], 'changing the account lists its spaces')
  await accounts.selectOption('0')
  await status.filter({ hasText: 'in account 0.' }).waitFor()
  await spaces.selectOption('images')
  await page.getByLabel('Content id prefix (optional)', { exact: true }).fill('fedora')
  const name = `DuraCloud Space images/fedora at ${duraHost} (AMAZON_S3)`
  t.equal(await page.getByLabel('Store name', { exact: true }).inputValue(), name, 'DuraCloud name suggestion (spec §7.3)')
  await screenshot(page, 'object-stores', { fullPage: true })
  await page.getByRole('button', { name: 'Create object store' }).click()
  await page.locator('#stores-list tbody th', { hasText: name }).waitFor()

  // What was sent: the data keys of spec §3.13; the password stays on the server.
  const sent = await page.evaluate(() => fetch('api/rest/objectStores.json', { headers: { 'X-Requested-With': 'XMLHttpRequest' } }).then((r) => r.json()))
  const stored = (sent as { objectStores: Array<{ name: string; data: string }> }).objectStores.find((s) => s.name === name)!
  t.same(JSON.parse(stored.data), { url: `http://${duraHost}/durastore`, username: 'dc-user', providerId: '0', providerName: 'AMAZON_S3', space: 'images', prefix: 'fedora' })
  t.match(await page.locator('#stores-list tbody tr', { hasText: name }).innerText(), 'space images/fedora, account 0 (AMAZON_S3)')

  // Deleting a store.
  page.once('dialog', (dialog) => void dialog.accept())
  await fedora.getByRole('button', { name: /Delete/ }).click()
  await fedora.waitFor({ state: 'detached' })
  t.equal((await server.handler.backend.listObjectStores()).length, 1)
  t.same(errors, [])
})
