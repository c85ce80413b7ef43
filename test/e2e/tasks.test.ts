/**
 * The Tasks, Object sets and Object stores panels in a real Chromium against
 * a real server: create stores, a set and a copy task in the UI, run it and
 * read its log, run it again, edit and delete; pause, resume and cancel a
 * running task; and the polling rhythm (conditional GETs answered 304, no
 * fast polling once nothing is active).
 */
import t from 'tap'
import { existsSync, readdirSync } from 'node:fs'
import path from 'node:path'
import type { Page } from 'playwright-core'
import { writeFixtureStore } from '../fixtures/foxml-fixture.js'
import { hitsOf, launchBrowser, openPage, openUi, screenshot, startUiServer, unlabelled } from './browser.js'

const browser = await launchBrowser(t)

async function tab(page: Page, name: string): Promise<void> {
  await page.getByRole('tab', { name }).click()
}

/** Accept the next confirm() the page shows. */
function acceptNextDialog(page: Page): void {
  page.once('dialog', (dialog) => void dialog.accept())
}

async function newFilesystemStore(page: Page, dir: string, name?: string): Promise<string> {
  await tab(page, 'Object stores')
  await page.getByRole('button', { name: 'New object store' }).click()
  await page.getByLabel('Directory on the server', { exact: true }).fill(dir)
  const nameField = page.getByLabel('Store name', { exact: true })
  const suggested = await nameField.inputValue()
  if (name !== undefined) await nameField.fill(name)
  await page.getByRole('button', { name: 'Create object store' }).click()
  await page.locator('#stores-list tbody th', { hasText: name ?? suggested }).waitFor()
  return suggested
}

t.test('stores, a set and a copy task made in the UI; run, log, run again, edit, delete', async (t) => {
  const server = await startUiServer(t)
  const source = path.join(server.storeRoot, 'export')
  const backup = path.join(server.storeRoot, 'backup')
  await writeFixtureStore(source, { count: 3, versions: 1, largeBytes: 2000 })
  const { page, errors } = await openPage(browser, t)
  await openUi(page, server.base)
  t.equal(await page.getByRole('tab', { name: 'Users' }).isVisible(), true, 'an administrator sees the Users tab')
  t.match(await page.locator('#tasks-active').innerText(), 'No task is running.')

  // Object stores: the name follows the directory until it is typed over.
  const suggested = await newFilesystemStore(page, source, 'Repository export')
  t.equal(suggested, `Local Directory ${source}`, 'filesystem name suggestion (spec §7.3)')
  t.match(await page.locator('#cs-notices').innerText(), 'Object store "Repository export" created.')
  t.equal(await newFilesystemStore(page, backup), `Local Directory ${backup}`)
  t.ok(existsSync(backup), 'creating the store created its directory')
  const rows = await page.locator('#stores-list tbody tr').allInnerTexts()
  t.equal(rows.length, 2)
  t.match(rows[0], source, 'the location is shown')

  // A path outside the allowed roots: the server's explanation is shown in the form.
  await page.getByRole('button', { name: 'New object store' }).click()
  await page.getByLabel('Directory on the server', { exact: true }).fill('/etc/cloudsync-not-here')
  await page.getByRole('button', { name: 'Create object store' }).click()
  const formError = page.locator('#stores-editor .form-error')
  await formError.filter({ hasText: 'The object store was not created' }).waitFor()
  t.match(await formError.innerText(), /store roots|CLOUDSYNC_STORE_ROOTS/, 'the refusal names the allowed roots')
  await page.getByRole('button', { name: 'Cancel' }).click()
  t.equal(await page.locator('#stores-editor').isHidden(), true, 'Cancel closes the editor')
  t.equal(await page.evaluate(() => document.activeElement?.textContent), 'New object store', 'the focus returns to the opener')

  // Object sets: the initial "All Objects" set is there; add a pattern set.
  await tab(page, 'Object sets')
  await page.locator('#sets-list tbody th', { hasText: 'All Objects' }).waitFor()
  await page.getByRole('button', { name: 'New object set' }).click()
  await page.getByLabel('Name', { exact: true }).fill('Demo objects')
  await page.getByLabel('Pattern', { exact: true }).fill('demo:*')
  t.same(await unlabelled(page), [], 'every field of the set editor has a label')
  await page.getByRole('button', { name: 'Create object set' }).click()
  await page.locator('#sets-list tbody tr', { hasText: 'Demo objects' }).waitFor()
  t.match(await page.locator('#sets-list tbody tr', { hasText: 'Demo objects' }).innerText(), 'PIDs matching demo:*')
  // A set name is HTML-escaped everywhere: it is text, not markup.
  await page.getByRole('button', { name: 'New object set' }).click()
  await page.getByLabel('Name', { exact: true }).fill('<img src=x onerror="window.pwned=1">')
  await page.getByRole('radio', { name: 'PID list' }).check()
  await page.getByLabel('PIDs', { exact: true }).fill('demo:1\ndemo:2')
  await page.getByRole('button', { name: 'Create object set' }).click()
  await page.locator('#sets-list tbody th', { hasText: '<img src=x' }).waitFor()
  t.equal(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned), undefined, 'no markup injection')
  t.match(await page.locator('#sets-list tbody tr', { hasText: '<img' }).innerText(), '2 PIDs: demo:1, demo:2')
  // Edit it: the form comes filled in; the change is a PATCH.
  await page.locator('#sets-list tbody tr', { hasText: '<img' }).getByRole('button', { name: 'Edit' }).click()
  t.equal(await page.getByRole('radio', { name: 'PID list' }).isChecked(), true)
  t.equal(await page.getByLabel('PIDs', { exact: true }).inputValue(), 'demo:1\ndemo:2')
  await page.getByLabel('Name', { exact: true }).fill('Third demo')
  await page.getByLabel('PIDs', { exact: true }).fill('demo:3')
  await page.getByRole('button', { name: 'Save changes' }).click()
  await page.locator('#sets-list tbody tr', { hasText: 'Third demo' }).filter({ hasText: '1 PID: demo:3' }).waitFor()
  // A query set: the query is sent as the JSON text of spec §4.4.
  await page.getByRole('button', { name: 'New object set' }).click()
  await page.getByLabel('Name', { exact: true }).fill('Active objects')
  await page.getByRole('radio', { name: 'Resource Index query' }).check()
  await page.getByLabel('Query language', { exact: true }).selectOption('iTQL')
  await page.getByLabel('Query', { exact: true }).fill('select $o from <#ri> where $o <fedora-model:state> <fedora-model:Active>')
  await page.getByRole('button', { name: 'Create object set' }).click()
  await page.locator('#sets-list tbody tr', { hasText: 'Active objects' }).filter({ hasText: 'iTQL query: select $o' }).waitFor()
  const query = (await server.handler.backend.listObjectSets()).find((set) => set.name === 'Active objects')!
  t.same(JSON.parse(query.data), { queryType: 'iTQL', queryText: 'select $o from <#ri> where $o <fedora-model:state> <fedora-model:Active>' })
  await screenshot(page, 'object-sets')

  // The copy task: suggested name, flags as strings, started at once.
  await tab(page, 'Tasks')
  await page.getByRole('button', { name: 'New task' }).click()
  await page.getByLabel('Object set', { exact: true }).selectOption({ label: 'Demo objects' })
  await page.getByLabel('Source store', { exact: true }).selectOption({ label: 'Repository export' })
  await page.getByLabel('Destination store', { exact: true }).selectOption({ label: `Local Directory ${backup}` })
  const taskName = `Copy Demo objects from Repository export to Local Directory ${backup}`
  t.same(await unlabelled(page), [], 'every field of the task editor has a label')
  t.equal(await page.getByLabel('Task name', { exact: true }).inputValue(), taskName, 'copy task name suggestion (spec §7.3)')
  t.equal(await page.getByLabel('Run the task as soon as it is created', { exact: true }).isChecked(), true)
  await page.getByRole('button', { name: 'Create task' }).click()

  // Watch it finish: a completed run, Succeeded, with its log.
  const run = page.locator('#tasks-completed tbody tr[data-log]').first()
  await run.filter({ hasText: 'Succeeded' }).waitFor()
  await page.locator('#tasks-idle tbody tr', { hasText: taskName }).filter({ hasText: 'Succeeded' }).waitFor()
  await run.getByRole('button', { name: 'Show log' }).click()
  t.equal(await run.getByRole('button', { name: 'Hide log' }).getAttribute('aria-expanded'), 'true')
  const log = page.locator('#tasks-completed tr.log-row pre').first()
  await log.filter({ hasText: '# Finished (succeeded)' }).waitFor()
  const lines = (await log.innerText()).trim().split('\n')
  t.match(lines[0], /^# Started at \d{4}-\d\d-\d\dT/)
  t.same(lines.slice(1, 4).sort(), ['Copying demo:1..OK (new in destination)', 'Copying demo:2..OK (new in destination)', 'Copying demo:3..OK (new in destination)'])
  t.match(lines[4], /^# Finished \(succeeded\) at /)
  t.equal(readdirSync(backup).length > 0, true, 'objects were written to the destination')
  const fullLog = await run.getByRole('link', { name: 'Open full log' }).getAttribute('href')
  t.match(fullLog, /\/api\/rest\/taskLogs\/\d+\/content$/, 'link to the full log')
  await screenshot(page, 'tasks')

  // Polling is conditional: unchanged lists come back as 304.
  const conditional = hitsOf(server, '/api/rest/tasks').filter((hit) => hit.method === 'GET' && hit.status === 304)
  t.ok(conditional.length > 0, `the browser revalidated the task list (${conditional.length} × 304)`)
  t.ok(conditional.every((hit) => hit.ifNoneMatch), '304s answer If-None-Match')
  t.ok(hitsOf(server, '/api/rest/taskLogs').some((hit) => hit.status === 304 && hit.ifNoneMatch), 'the log list too')

  // Nothing active: no fast polling (the next look is 60 s away).
  await page.waitForTimeout(1200) // let a follow-up read in flight land
  const before = hitsOf(server, '/api/rest/tasks').length
  await page.waitForTimeout(2500)
  t.equal(hitsOf(server, '/api/rest/tasks').length, before, 'no task polling for 2.5 s while nothing is active')

  // Run it again from the idle list: the objects now exist and are skipped.
  const idleRow = page.locator('#tasks-idle tbody tr', { hasText: taskName })
  await idleRow.getByRole('button', { name: 'Run' }).click()
  await page.locator('#tasks-completed tbody tr[data-log]').nth(1).waitFor()
  const second = page.locator('#tasks-completed tbody tr[data-log]').first()
  await second.filter({ hasText: 'Succeeded' }).waitFor()
  await second.getByRole('button', { name: 'Show log' }).click()
  const secondLog = page.locator('#tasks-completed tr.log-row:visible pre').first()
  await secondLog.filter({ hasText: '# Finished' }).waitFor()
  t.match(await secondLog.innerText(), 'Copying demo:1..SKIPPED (exists in destination)', 'overwrite is off by default')

  // The set is used by the task: the server's refusal is shown as a sentence.
  await tab(page, 'Object sets')
  acceptNextDialog(page)
  await page.locator('#sets-list tbody tr', { hasText: 'Demo objects' }).getByRole('button', { name: 'Delete' }).click()
  const notice = page.locator('#cs-notices [role=alert]').last()
  await notice.waitFor()
  t.match(await notice.innerText(), /^The object set "Demo objects" was not deleted: \S.*/)
  t.notMatch(await notice.innerText(), /HTTP 409/, 'the detail, not just a status')

  // Edit the idle task: the form is filled in; the new name shows in the list.
  await tab(page, 'Tasks')
  await idleRow.getByRole('button', { name: 'Edit' }).click()
  t.equal(await page.getByLabel('Task name', { exact: true }).inputValue(), taskName)
  t.equal(await page.getByLabel('Source store', { exact: true }).inputValue() !== '', true, 'the stores are preselected')
  await page.getByLabel('Task name', { exact: true }).fill('Nightly backup')
  await page.getByLabel('Replace objects that already exist in the destination', { exact: true }).check()
  await page.getByRole('button', { name: 'Save changes' }).click()
  await page.locator('#tasks-idle tbody th', { hasText: 'Nightly backup' }).waitFor()
  const stored = await server.handler.backend.listTasks()
  t.equal(JSON.parse(stored[0]!.data).overwrite, 'true', 'copy flags are sent as strings (spec §3.13)')

  // Delete: refused while runs are logged, allowed after deleting the logs.
  const nightly = page.locator('#tasks-idle tbody tr', { hasText: 'Nightly backup' })
  acceptNextDialog(page)
  await nightly.getByRole('button', { name: 'Delete' }).click()
  await page.locator('#cs-notices [role=alert]', { hasText: 'The task "Nightly backup" was not deleted' }).waitFor()
  for (let i = 0; i < 2; i++) {
    acceptNextDialog(page)
    await page.locator('#tasks-completed tbody tr[data-log]').first().getByRole('button', { name: 'Delete log' }).click()
    await page.waitForFunction((n) => document.querySelectorAll('#tasks-completed tbody tr[data-log]').length === n, 1 - i)
  }
  acceptNextDialog(page)
  await nightly.getByRole('button', { name: 'Delete' }).click()
  await page.locator('#tasks-idle', { hasText: 'No idle tasks' }).waitFor()
  t.same(await server.handler.backend.listTasks(), [], 'the task is gone')
  t.same(errors, [], 'no script errors')
})

t.test('pause, resume and cancel a running task from the UI', async (t) => {
  const server = await startUiServer(t, { pacedListMs: 120 })
  const dir = path.join(server.storeRoot, 'repo')
  await writeFixtureStore(dir, { count: 80, versions: 1, largeBytes: 10, externalContent: false, managed: () => false })
  const { page, errors } = await openPage(browser, t)
  await openUi(page, server.base)
  await newFilesystemStore(page, dir, 'Repository')

  // A list task, made in the UI and started at once.
  await tab(page, 'Tasks')
  await page.getByRole('button', { name: 'New task' }).click()
  await page.getByRole('radio', { name: 'List the objects of a set in a store' }).check()
  await page.getByLabel('Object set', { exact: true }).selectOption({ label: 'All Objects' })
  await page.getByLabel('Store to list', { exact: true }).selectOption({ label: 'Repository' })
  t.equal(await page.getByLabel('Task name', { exact: true }).inputValue(), 'List All Objects in Repository', 'list task name suggestion (spec §7.3)')
  t.equal(await page.getByLabel('Source store', { exact: true }).isDisabled(), true, 'the copy fields are out of the way')
  await page.getByRole('button', { name: 'Create task' }).click()

  const card = page.locator('#tasks-active li.card', { hasText: 'List All Objects in Repository' })
  await card.locator('.state', { hasText: 'Running' }).waitFor()
  await card.locator('.progress', { hasText: /[1-9]\d* objects? done so far/ }).waitFor()
  t.match(await card.locator('pre.log-tail').innerText(), /# Started at .*\n(demo:\d+\n?)+/, 'the live log tail')
  await screenshot(page, 'task-running')

  // With the keyboard: the focus stays in the card when Pause turns into Resume.
  await card.getByRole('button', { name: 'Pause' }).focus()
  await page.keyboard.press('Enter')
  await card.locator('.state', { hasText: 'Paused' }).waitFor()
  t.equal(await page.evaluate(() => document.activeElement?.textContent), 'Resume', 'the focus moved to Resume')
  await card.locator('pre.log-tail', { hasText: '# Paused at' }).waitFor()
  t.same(await card.getByRole('button').allInnerTexts(), ['Resume', 'Cancel'], 'a paused task can be resumed or canceled')
  const pausedAt = await card.locator('.progress').innerText()
  await page.waitForTimeout(600)
  t.equal(await card.locator('.progress').innerText(), pausedAt, 'no progress while paused')

  await card.getByRole('button', { name: 'Resume' }).click()
  await card.locator('.state', { hasText: 'Running' }).waitFor()
  await card.locator('pre.log-tail', { hasText: '# Resumed at' }).waitFor()
  t.same(await card.getByRole('button').allInnerTexts(), ['Pause', 'Cancel'])

  await card.getByRole('button', { name: 'Cancel' }).click()
  await page.locator('#tasks-active', { hasText: 'No task is running.' }).waitFor()
  const run = page.locator('#tasks-completed tbody tr[data-log]').first()
  await run.filter({ hasText: 'Canceled' }).waitFor()
  await run.getByRole('button', { name: 'Show log' }).click()
  const log = page.locator('#tasks-completed tr.log-row pre').first()
  await log.filter({ hasText: '# Finished (canceled)' }).waitFor()
  const lines = (await log.innerText()).trim().split('\n')
  t.ok(lines.length < 80, `canceled before the end (${lines.length} lines)`)
  t.same(errors, [], 'no script errors')
})
