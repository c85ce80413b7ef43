/**
 * The browser client library (`/js/cloudsync-api.js`) inside a real page,
 * against a real server: every method of spec §7.2, once with callbacks
 * and once with `client.promises`, plus synchronous construction and
 * calls, first-run initialization, refusals (problem `detail`), and the
 * default error handler on an expired session.
 */
import t from 'tap'
import http from 'node:http'
import path from 'node:path'
import { mkdirSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import type { Page } from 'playwright-core'
import { ADMIN, launchBrowser, logIn, openPage, startUiServer } from './browser.js'

const browser = await launchBrowser(t)

/** Open a plain same-origin page (the service document) and load the client library into it. */
async function clientPage(page: Page, api: string, file = 'cloudsync-api.js'): Promise<void> {
  await page.goto(`${api}/service.json`)
  await page.addScriptTag({ url: new URL(`/js/${file}`, api).href })
}

/** A DuraStore answering the look-ups (HTTP Basic dc/dc-pass). */
async function startDuraStore(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const auth = 'Basic ' + Buffer.from('dc:dc-pass').toString('base64')
  const server = http.createServer((req, res) => {
    if (req.headers.authorization !== auth) {
      res.writeHead(401)
      return res.end()
    }
    res.setHeader('Content-Type', 'application/xml')
    if (req.url === '/durastore/stores') return res.end('<storageProviderAccounts><storageAcct isPrimary="1"><id>0</id><storageProviderType>AMAZON_S3</storageProviderType></storageAcct></storageProviderAccounts>')
    if (req.url === '/durastore/spaces?storeID=0') return res.end('<spaces><space id="backups"/><space id="a b&amp;c"/></spaces>')
    res.writeHead(404)
    res.end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/durastore`
}

t.test('construction, first-run initialization and refusals', async (t) => {
  const server = await startUiServer(t, { initialize: false })
  const { page, errors } = await openPage(browser, t)
  await clientPage(page, server.api, 'cloudsync-client.js')
  const out = await page.evaluate(async (serviceUri) => {
    const notices: string[] = []
    let reloads = 0
    CloudSyncClient.onNotice = (_message, kind) => { notices.push(kind) }
    CloudSyncClient.reload = () => { reloads++ }
    // Synchronous construction (spec §7.1): info is there when the constructor returns.
    const client = new CloudSyncClient(serviceUri)
    const syncInfo = { initialized: client.info!.initialized, usersUri: client.info!.usersUri }
    const created = await CloudSyncClient.create(serviceUri)
    // initialize with callbacks, then again with a Promise (now a 409).
    const first = await new Promise<{ status: number; initialized: boolean }>((resolve, reject) => {
      client.initialize({ serviceInit: { initialAdminUsername: 'admin', initialAdminPassword: 'admin-pass' } },
        (data, _text, xhr) => resolve({ status: xhr.status, initialized: data.service.initialized }), true,
        (xhr) => reject(new Error(`initialize failed: ${xhr.status}`)))
    })
    const again = await client.promises.initialize({ serviceInit: { initialAdminUsername: 'x', initialAdminPassword: 'y' } })
      .then(() => ({ status: 200, detail: '' }), (err: CloudSyncRequestError) => ({ status: err.status, detail: err.problem?.detail ?? '', name: err.name }))
    const afterInit = client.info!.initialized
    // Not logged in: the default error handler says the session expired and reloads (spec §7.2).
    await new Promise<void>((resolve) => {
      client.listUsers(() => resolve())
      const wait = (): void => { if (reloads > 0) resolve(); else setTimeout(wait, 20) }
      wait()
    })
    return { syncInfo, createdInitialized: created.info.initialized, first, again, afterInit, notices, reloads }
  }, `${server.api}/service`)
  t.same(out.syncInfo, { initialized: false, usersUri: `${server.api}/users` }, 'sync constructor loaded the service info')
  t.equal(out.createdInitialized, false, 'CloudSyncClient.create resolves with info')
  t.same(out.first, { status: 200, initialized: true }, 'initialize (callbacks): 200 with the service info')
  t.equal(out.afterInit, true, 'client.info follows the initialize response')
  t.equal(out.again.status, 409, 'a second initialize is refused')
  t.ok(out.again.detail.length > 10, `with a readable detail: "${out.again.detail}"`)
  t.same(out.notices, ['expired'], 'a 401 is reported as an expired session')
  t.equal(out.reloads, 1, 'and the page is reloaded')
  t.equal(await server.handler.backend.isInitialized(), true)
  t.same(errors, [])
})

t.test('every client method, with callbacks and with Promises', async (t) => {
  const server = await startUiServer(t)
  const dura = await startDuraStore(t)
  const { page, errors } = await openPage(browser, t)
  await logIn(page, server.base, ADMIN)
  await clientPage(page, server.api)
  for (const mode of ['callbacks', 'promises'] as const) {
    const dir = path.join(server.storeRoot, mode)
    mkdirSync(dir)
    const steps = await page.evaluate(async ({ serviceUri, mode, dir, dura }) => {
      type Outcome = { ok: boolean; status?: number; textStatus?: string; data?: any; detail?: string }
      const client = await CloudSyncClient.create(serviceUri)
      const c = client as any
      // One call, the way `mode` says: success/error callbacks, or client.promises.
      const call = (name: string, ...args: unknown[]): Promise<Outcome> => mode === 'callbacks'
        ? new Promise((resolve) => c[name](...args,
          (data: unknown, textStatus: string, xhr: XMLHttpRequest) => resolve({ ok: true, status: xhr.status, textStatus, data }), true,
          (xhr: XMLHttpRequest, _m: string, _u: string, textStatus: string) => resolve({ ok: false, status: xhr.status, textStatus, detail: (JSON.parse(xhr.responseText || '{}') as { detail?: string }).detail })))
        : c.promises[name](...args).then((data: unknown) => ({ ok: true, data }),
          (err: CloudSyncRequestError) => ({ ok: false, status: err.status, textStatus: err.textStatus, detail: err.problem?.detail }))
      const log: Array<[string, Outcome]> = []
      const step = async (label: string, name: string, ...args: unknown[]): Promise<Outcome> => {
        const outcome = await call(name, ...args)
        log.push([label, outcome])
        return outcome
      }
      const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

      await step('getServiceInfo', 'getServiceInfo')
      await step('getCurrentUser', 'getCurrentUser')
      const user = await step('createUser', 'createUser', { user: { name: `user-${mode}`, password: 'pw-1', enabled: true, admin: false } })
      await step('listUsers', 'listUsers')
      await step('getUser', 'getUser', user.data.user.uri)
      await step('updateUser', 'updateUser', user.data.user.uri, { user: { admin: 'true' } })
      const set = await step('createObjectSet', 'createObjectSet', { objectSet: { name: `set-${mode}`, type: 'pidList', data: 'demo:1\ndemo:2' } })
      await step('listObjectSets', 'listObjectSets')
      await step('getObjectSet', 'getObjectSet', set.data.objectSet.uri)
      await step('updateObjectSet', 'updateObjectSet', set.data.objectSet.uri, { objectSet: { data: 'demo:*', type: 'pidPattern' } })
      const store = await step('createObjectStore', 'createObjectStore', { objectStore: { name: `store-${mode}`, type: 'filesystem', data: JSON.stringify({ path: dir }) } })
      await step('listObjectStores', 'listObjectStores')
      await step('getObjectStore', 'getObjectStore', store.data.objectStore.uri)
      const task = await step('createTask', 'createTask', { task: { name: `task-${mode}`, type: 'list', state: 'Starting', data: JSON.stringify({ setUri: set.data.objectSet.uri, storeUri: store.data.objectStore.uri }) } })
      let current = task
      for (let i = 0; i < 100 && current.data.task.state !== 'Idle'; i++) {
        await sleep(100)
        current = await call('getTask', task.data.task.uri)
      }
      log.push(['getTask', current])
      await step('listTasks', 'listTasks')
      const logs = await step('listTaskLogs', 'listTaskLogs')
      const runLog = (logs.data.taskLogs as Array<{ taskUri: string; uri: string }>).find((l) => l.taskUri === task.data.task.uri)!
      await step('getTaskLog', 'getTaskLog', runLog.uri)
      await step('updateTask', 'updateTask', task.data.task.uri, { task: { name: `task-${mode}-renamed` } })
      await step('deleteTask (has a log)', 'deleteTask', task.data.task.uri)
      await step('deleteTaskLog', 'deleteTaskLog', runLog.uri)
      await step('deleteTask', 'deleteTask', task.data.task.uri)
      await step('deleteObjectSet', 'deleteObjectSet', set.data.objectSet.uri)
      await step('deleteObjectStore', 'deleteObjectStore', store.data.objectStore.uri)
      await step('deleteUser', 'deleteUser', user.data.user.uri)
      await step('listProviderAccounts', 'listProviderAccounts', dura, 'dc', 'dc-pass')
      await step('listSpaces', 'listSpaces', dura, 'dc', 'dc-pass', '0')
      await step('listSpaces (wrong password)', 'listSpaces', dura, 'dc', 'wrong', '0')
      await step('getTask (unknown)', 'getTask', serviceUri.replace(/service$/, 'tasks/999999'))
      // A synchronous call (async = false) completes before the method returns.
      let syncDone = false
      if (mode === 'callbacks') client.listUsers(() => { syncDone = true }, false)
      else syncDone = true
      log.push(['sync listUsers', { ok: syncDone }])
      return log
    }, { serviceUri: `${server.api}/service`, mode, dir, dura })

    const by = new Map(steps)
    const ok = (label: string) => {
      const outcome = by.get(label)
      t.ok(outcome?.ok, `${mode}: ${label}`)
      return outcome!
    }
    const statusOf = (label: string, status: number) => {
      if (mode === 'callbacks') t.equal(by.get(label)?.status, status, `${mode}: ${label} answered ${status}`)
    }
    t.equal(ok('getServiceInfo').data.service.usersUri, `${server.api}/users`)
    t.equal(ok('getCurrentUser').data.user.name, 'admin')
    t.same(Object.keys(ok('createUser').data.user).sort(), ['admin', 'enabled', 'name', 'uri'], 'no password in the answer')
    statusOf('createUser', 201)
    t.ok(ok('listUsers').data.users.some((u: { name: string }) => u.name === `user-${mode}`))
    t.equal(ok('getUser').data.user.name, `user-${mode}`)
    t.equal(ok('updateUser').data.user.admin, true, 'promoted with the string "true"')
    t.equal(ok('createObjectSet').data.objectSet.data, 'demo:1\ndemo:2')
    t.ok(ok('listObjectSets').data.objectSets.length >= 2)
    t.equal(ok('getObjectSet').data.objectSet.type, 'pidList')
    t.equal(ok('updateObjectSet').data.objectSet.type, 'pidPattern')
    t.equal(JSON.parse(ok('createObjectStore').data.objectStore.data).path, dir)
    t.ok(ok('listObjectStores').data.objectStores.length >= 1)
    t.equal(ok('getObjectStore').data.objectStore.type, 'filesystem')
    t.equal(ok('createTask').data.task.state, 'Starting')
    t.equal(ok('getTask').data.task.state, 'Idle', 'the run finished')
    t.ok(ok('listTasks').data.tasks.length >= 1)
    t.ok(ok('listTaskLogs').data.taskLogs.length >= 1)
    t.equal(ok('getTaskLog').data.taskLog.resultType, 'Succeeded')
    t.equal(ok('updateTask').data.task.name, `task-${mode}-renamed`)
    const refused = by.get('deleteTask (has a log)')!
    t.equal(refused.ok, false, `${mode}: deleting a task with logs is refused`)
    t.equal(refused.status, 409)
    t.ok(refused.detail && refused.detail.length > 10, `${mode}: with a detail: "${refused.detail}"`)
    for (const label of ['deleteTaskLog', 'deleteTask', 'deleteObjectSet', 'deleteObjectStore', 'deleteUser']) {
      t.equal(ok(label).data, undefined, `${mode}: ${label} resolves with nothing (204)`)
      statusOf(label, 204)
      if (mode === 'callbacks') t.equal(by.get(label)!.textStatus, 'nocontent')
    }
    t.same(ok('listProviderAccounts').data, { providerAccounts: [{ id: '0', primary: true, type: 'AMAZON_S3' }] })
    t.same(ok('listSpaces').data, { spaces: [{ id: 'backups' }, { id: 'a b&c' }] })
    const upstream = by.get('listSpaces (wrong password)')!
    t.equal(upstream.ok, false)
    t.equal(upstream.status, 502, 'an upstream refusal is a 502, never a 401')
    const unknown = by.get('getTask (unknown)')!
    t.same([unknown.ok, unknown.status], [false, 404])
    t.ok(by.get('sync listUsers')!.ok, `${mode}: synchronous call`)
  }
  t.equal((await server.handler.backend.listUsers()).length, 1, 'everything created was deleted again')
  t.same(errors, [])
})
