/**
 * The login page in a real Chromium: first-run initialization, log in and
 * out, a failed attempt, the browse-the-API round trip (a logged-out visit
 * to `{api}/users.json` goes through the login page and back), and an
 * expired session leading back to the login page.
 */
import t from 'tap'
import { ADMIN, launchBrowser, openPage, openUi, screenshot, startUiServer } from './browser.js'

const browser = await launchBrowser(t)

t.test('first-run initialization through the login page', async (t) => {
  const server = await startUiServer(t, { initialize: false })
  const { page, errors } = await openPage(browser, t)
  const landing = await page.goto(`${server.base}/`)
  t.equal(new URL(page.url()).pathname, '/login', 'the UI sends a visitor to the login page')
  t.equal(landing?.status(), 200)
  await page.getByRole('heading', { name: 'Set up CloudSync' }).waitFor()
  await page.getByLabel('Administrator name').fill('root')
  await page.getByLabel('Password', { exact: true }).fill('s3cret-pass')
  await page.getByLabel('Repeat the password').fill('s3cret-typo')
  await page.getByRole('button', { name: 'Create administrator and log in' }).click()
  t.match(await page.getByRole('alert').innerText(), 'The two passwords do not match', 'a mismatch is explained')
  t.equal(await page.getByLabel('Administrator name').inputValue(), 'root', 'the name is kept')
  await page.getByLabel('Password', { exact: true }).fill('s3cret-pass')
  await page.getByLabel('Repeat the password').fill('s3cret-pass')
  await screenshot(page, 'setup')
  await Promise.all([page.waitForURL(`${server.base}/`), page.getByRole('button', { name: 'Create administrator and log in' }).click()])
  await page.waitForSelector('body.ready')
  t.equal(await page.locator('.who strong').innerText(), 'root', 'logged in as the new administrator')
  t.equal(await page.getByRole('tab', { name: 'Users' }).isVisible(), true, 'who is an administrator')
  t.equal(await server.handler.backend.isInitialized(), true)
  // Afterwards the page is the normal login form.
  await page.goto(`${server.base}/login`)
  await page.getByRole('heading', { name: 'Log in to CloudSync' }).waitFor()
  t.same(errors, [])
})

t.test('log in, a failed attempt, log out', async (t) => {
  const server = await startUiServer(t)
  const { page, context, errors } = await openPage(browser, t)
  await page.goto(`${server.base}/login`)
  await page.getByLabel('User name').focus()
  await screenshot(page, 'login')
  await page.getByLabel('User name').fill(ADMIN[0])
  await page.getByLabel('Password', { exact: true }).fill('wrong')
  const [failed] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.getByRole('button', { name: 'Log in' }).click()])
  t.equal(failed.status(), 401)
  t.match(await page.getByRole('alert').innerText(), 'Login failed', 'one generic failure notice')
  t.equal(await page.getByLabel('User name').inputValue(), ADMIN[0], 'the name is kept')
  t.equal(await page.getByLabel('Password', { exact: true }).getAttribute('aria-invalid'), 'true')

  await openUi(page, server.base)
  t.equal(new URL(page.url()).pathname, '/', 'the UI after login')
  const session = (await context.cookies()).find((c) => c.httpOnly)
  t.ok(session, 'an HttpOnly session cookie')
  t.equal(session?.sameSite, 'Lax')

  await Promise.all([page.waitForURL(`${server.base}/login`), page.getByRole('button', { name: 'Log out' }).click()])
  await page.getByRole('heading', { name: 'Log in to CloudSync' }).waitFor()
  await page.goto(`${server.base}/`)
  t.equal(new URL(page.url()).pathname, '/login', 'logged out: the UI asks for a login again')
  t.same(errors, [])
})

t.test('browsing the API: to the login page and back to users.json', async (t) => {
  const server = await startUiServer(t)
  const { page } = await openPage(browser, t)
  const first = await page.goto(`${server.api}/users.json`)
  t.equal(new URL(page.url()).pathname, '/login', 'a logged-out visit is sent to the login page')
  t.equal(first?.request().redirectedFrom()?.url(), `${server.api}/users.json`)
  await page.getByLabel('User name').fill(ADMIN[0])
  await page.getByLabel('Password', { exact: true }).fill(ADMIN[1])
  await Promise.all([page.waitForURL(`${server.api}/users.json`), page.getByRole('button', { name: 'Log in' }).click()])
  const users = JSON.parse(await page.locator('body').innerText()) as { users: Array<{ name: string; uri: string }> }
  t.same(users.users.map((u) => u.name), ['admin'], 'back at users.json, as JSON')
  t.equal(users.users[0]!.uri, `${server.api}/users/1.json`, 'links keep the suffix')

  // The XML view too, now that the session exists.
  await page.goto(`${server.api}/tasks.xml`)
  t.match(await page.content(), 'tasks')
})

t.test('an expired session leads back to the login page', async (t) => {
  const server = await startUiServer(t, { session: { idleTimeoutMs: 1500 } })
  const { page, errors } = await openPage(browser, t)
  await openUi(page, server.base)
  // The UI is idle: nothing is polled for a minute, so the session runs out.
  await page.waitForTimeout(2000)
  await page.getByRole('tab', { name: 'Object stores' }).click()
  const notice = page.locator('#cs-notices [role=alert]')
  await notice.waitFor()
  t.match(await notice.innerText(), 'Your session has expired', 'the person is told why')
  await page.waitForURL((url) => url.pathname === '/login')
  await page.getByRole('heading', { name: 'Log in to CloudSync' }).waitFor()
  // Logging in again returns to the UI.
  await page.getByLabel('User name').fill(ADMIN[0])
  await page.getByLabel('Password', { exact: true }).fill(ADMIN[1])
  await Promise.all([page.waitForURL((url) => url.pathname === '/'), page.getByRole('button', { name: 'Log in' }).click()])
  await page.waitForSelector('body.ready')
  t.same(errors, [])
})
