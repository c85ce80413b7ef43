/**
 * Cross-site request forgery in a real Chromium (spec §6.6, D17): a page
 * from another origin on the same machine submits a form with
 * `_method=DELETE` against an object set while the victim is logged in. The
 * session cookie rides along (same site: 127.0.0.1 on another port), and the
 * server still refuses. The same form from the CloudSync page itself works,
 * which shows the refusal comes from the origin check and nothing else.
 */
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { launchBrowser, openPage, openUi, startUiServer } from './browser.js'

const browser = await launchBrowser(t)

/** A hostile site: one page whose form posts to `target` as soon as it loads. */
async function startHostileSite(t: { teardown(fn: () => unknown): void }, target: string): Promise<number> {
  const page = `<!DOCTYPE html><html><body>
<form id="f" method="post" action="${target}"><input type="hidden" name="_method" value="DELETE"></form>
<script>
  fetch(${JSON.stringify(target)}, { method: 'POST', mode: 'no-cors', credentials: 'include',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: '_method=DELETE' })
    .catch(() => {}).then(() => document.getElementById('f').submit())
</script></body></html>`
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' })
    res.end(page)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return (server.address() as AddressInfo).port
}

t.test('a cross-site form POST with _method=DELETE deletes nothing', async (t) => {
  const server = await startUiServer(t)
  const backend = server.handler.backend
  const target = await backend.createObjectSet({ name: 'Precious', type: 'pidPattern', data: 'demo:*' })
  const control = await backend.createObjectSet({ name: 'Expendable', type: 'pidPattern', data: 'x:*' })
  const { page, context } = await openPage(browser, t)
  await openUi(page, server.base)
  t.equal((await context.cookies(server.base)).length, 1, 'the victim has a session cookie')

  /** Open the hostile page at `host` in the victim's browser; the statuses the server gave its two POSTs. */
  const attack = async (host: string): Promise<number[]> => {
    const port = await startHostileSite(t, `${server.api}/objectSets/${target.id}?_method=DELETE`)
    const before = server.hits.length
    const tab = await context.newPage()
    await Promise.all([
      tab.waitForResponse((r) => r.url().startsWith(`${server.api}/objectSets/`) && r.request().isNavigationRequest()),
      tab.goto(`http://${host}:${port}/`)
    ])
    const statuses = server.hits.slice(before).filter((hit) => hit.method === 'POST').map((hit) => hit.status)
    if (host === '127.0.0.1') t.match(await tab.locator('body').innerText(), /Cross-site request refused/, 'the refusal explains itself')
    await tab.close()
    return statuses
  }

  // Same site (127.0.0.1, another port): the Lax cookie rides along; the origin check refuses.
  t.same(await attack('127.0.0.1'), [403, 403], 'other origin on the same site: both POSTs refused with 403')
  t.ok(await backend.getObjectSet(target.id), 'the object set still exists')

  // The same form from the CloudSync page itself (same origin) does delete (204: the page stays).
  await page.evaluate((url) => {
    const form = document.createElement('form')
    form.method = 'post'
    form.action = url
    const field = document.createElement('input')
    field.type = 'hidden'
    field.name = '_method'
    field.value = 'DELETE'
    form.appendChild(field)
    document.body.appendChild(form)
    form.submit()
  }, `${server.api}/objectSets/${control.id}?_method=DELETE`)
  await t.resolves(waitFor(async () => (await backend.getObjectSet(control.id)) === undefined), 'the same form from this site deletes the other set')

  // Cross-site (localhost vs 127.0.0.1): the cookie is not even sent.
  const statuses = await attack('localhost')
  t.equal(statuses.length, 2, 'both POSTs reached the server')
  t.ok(statuses.every((status) => status === 401 || status === 302), `cross-site: no session, no access (${statuses.join(', ')})`)
  t.ok(await backend.getObjectSet(target.id), 'the targeted set survived everything')
  const still = await page.evaluate(() => fetch('api/rest/users/current', { headers: { 'X-Requested-With': 'XMLHttpRequest' } }).then((r) => r.status))
  t.equal(still, 200, 'the victim is still logged in: a forged post starts no session that would replace theirs')
})

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
