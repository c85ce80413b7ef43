/**
 * The UI mounted inside another application (Express, at `/cloudsync`):
 * every page, script, style and API link carries the mount; the page is
 * served with a strict Content-Security-Policy, an ETag and 304s; polling
 * uses conditional requests.
 */
import t from 'tap'
import http from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { AddressInfo } from 'node:net'
import { createApp } from '../../examples/express-mount.js'
import { request } from '../helpers/http.js'
import { ADMIN, launchBrowser, logIn, openPage } from './browser.js'

const browser = await launchBrowser(t)

t.test('the UI at /cloudsync inside an Express app', async (t) => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'cloudsync-e2e-mount-'))
  const { app, cloud } = createApp({ dataDir, taskManager: { intervalMs: 200 }, log: () => {} })
  await cloud.ready
  await cloud.backend.initialize({ name: ADMIN[0], password: ADMIN[1] })
  const hits: Array<{ method: string; path: string; status: number }> = []
  const server = http.createServer((req, res) => {
    const entry = { method: req.method ?? '', path: req.url ?? '', status: 0 }
    res.on('finish', () => hits.push({ ...entry, status: res.statusCode }))
    app(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    await cloud.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  // The page shell over plain HTTP: policy, caching, escaping, methods.
  const basic = { Authorization: 'Basic ' + Buffer.from(ADMIN.join(':')).toString('base64') }
  const shell = await request(base, 'GET', '/cloudsync/', { headers: basic })
  t.equal(shell.status, 200)
  t.match(shell.headers['content-type'], 'text/html')
  t.match(shell.headers['content-security-policy'], "script-src 'self'", 'only our own scripts')
  t.notMatch(shell.headers['content-security-policy'], 'unsafe-inline', 'no inline script or style')
  t.equal(shell.headers['cache-control'], 'private, no-cache')
  t.match(shell.text, '<script src="/cloudsync/js/cloudsync-api.js" defer></script>')
  t.match(shell.text, '<script src="/cloudsync/js/cloudsync-ui.js" defer></script>')
  t.match(shell.text, 'href="/cloudsync/css/cloudsync.css"')
  t.match(shell.text, 'data-api="/cloudsync/api/rest"')
  t.equal((await request(base, 'GET', '/cloudsync/', { headers: { ...basic, 'If-None-Match': String(shell.headers.etag) } })).status, 304, 'revalidation answers 304')
  t.equal((await request(base, 'POST', '/cloudsync/', { headers: basic })).status, 405)
  for (const asset of ['/cloudsync/js/cloudsync-ui.js', '/cloudsync/css/cloudsync.css']) {
    const reply = await request(base, 'GET', asset)
    t.equal(reply.status, 200, `${asset} is served without a login`)
  }
  t.match((await request(base, 'GET', '/cloudsync/css/cloudsync.css')).headers['content-type'], 'text/css')

  // In the browser, with a quick idle rhythm so polling can be watched.
  const { page, errors } = await openPage(browser, t, { settings: { idleMs: 400 } })
  await page.goto(`${base}/cloudsync/`)
  t.equal(new URL(page.url()).pathname, '/cloudsync/login', 'to the login page under the mount')
  await logIn(page, base, ADMIN, '/cloudsync/login')
  t.equal(new URL(page.url()).pathname, '/cloudsync/', 'and back to the UI')
  await page.waitForSelector('body.ready')
  await page.getByRole('tab', { name: 'Object sets' }).click()
  await page.getByRole('button', { name: 'New object set' }).click()
  await page.getByLabel('Name', { exact: true }).fill('Mounted set')
  await page.getByLabel('Pattern', { exact: true }).fill('*')
  await page.getByRole('button', { name: 'Create object set' }).click()
  await page.locator('#sets-list tbody th', { hasText: 'Mounted set' }).waitFor()
  t.ok(hits.some((hit) => hit.method === 'POST' && hit.path === '/cloudsync/api/rest/objectSets' && hit.status === 201), 'created through the mounted API')

  const before = hits.length
  await page.getByRole('tab', { name: 'Tasks' }).click()
  await page.waitForTimeout(1500)
  const polls = hits.slice(before).filter((hit) => hit.path === '/cloudsync/api/rest/tasks')
  t.ok(polls.length >= 2, `the task list is polled (${polls.length} times in 1.5 s at idleMs 400)`)
  t.ok(polls.filter((hit) => hit.status === 304).length >= 1, 'and an unchanged list costs a 304')

  await page.getByRole('tab', { name: 'Account' }).click()
  const link = page.getByRole('link', { name: 'JSON' }).first()
  t.equal(await link.getAttribute('href'), `${base}/cloudsync/api/rest/service.json`, 'API links carry the mount')
  await Promise.all([page.waitForURL(`${base}/cloudsync/login`), page.getByRole('button', { name: 'Log out' }).click()])
  t.same(errors, [], 'no script errors, no policy violations')
})
