/** The Node client against the real server: every operation, Basic and session. */
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { CloudSyncNodeClient, CloudSyncError } from '../src/client/node.js'
import { startTestServer, ADMIN } from './helpers/server.js'

/** The HTTP status a rejected client call carried (undefined when it did not fail). */
async function failureStatus(call: Promise<unknown>): Promise<number | undefined> {
  try {
    await call
    return undefined
  } catch (err) {
    return err instanceof CloudSyncError ? err.status : -1
  }
}

async function fakeDuraStore(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const server = http.createServer((req, res) => {
    res.setHeader('Content-Type', 'application/xml')
    if (req.url === '/durastore/stores') res.end('<storageProviderAccounts><storageAcct isPrimary="1"><id>0</id><storageProviderType>AMAZON_S3</storageProviderType></storageAcct></storageProviderAccounts>')
    else if (req.url === '/durastore/spaces?storeID=0') res.end('<spaces><space id="fedora-backups"/><space id="images"/></spaces>')
    else { res.statusCode = 404; res.end() }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/durastore`
}

t.test('Node client: every operation against the running server', async (t) => {
  const s = await startTestServer(t, { initialize: false, taskManager: false })
  const serviceUri = `${s.api}/service`
  const anonymous = new CloudSyncNodeClient({ serviceUri })
  t.equal((await anonymous.getServiceInfo()).initialized, false)
  t.equal((await anonymous.initialize({ initialAdminUsername: ADMIN[0], initialAdminPassword: ADMIN[1] })).initialized, true)
  t.equal(await failureStatus(anonymous.listUsers()), 401)

  const admin = new CloudSyncNodeClient({ serviceUri, auth: { username: ADMIN[0], password: ADMIN[1] } })
  const bob = await admin.createUser({ name: 'bob', password: 'pw', admin: false, enabled: true })
  t.equal(bob.name, 'bob')
  t.same((await admin.listUsers()).map((u) => u.name), ['admin', 'bob'])
  t.equal((await admin.getUser(bob.uri)).admin, false)
  t.equal((await admin.getCurrentUser()).name, 'admin')
  t.equal((await admin.updateUser(bob, { admin: true })).admin, true)

  const set = await admin.createObjectSet({ name: 'Demo', type: 'pidPattern', data: 'demo:*' })
  t.equal((await admin.updateObjectSet(set, { data: 'demo:1' })).data, 'demo:1')
  t.equal((await admin.getObjectSet(set.uri)).name, 'Demo')
  t.equal((await admin.listObjectSets()).length, 2)
  const store = await admin.createObjectStore({ name: 'Dir', type: 'filesystem', data: { path: path.join(s.storeRoot, 'dir') } })
  t.equal((await admin.getObjectStore(store)).type, 'filesystem')
  t.equal((await admin.listObjectStores()).length, 1)
  const task = await admin.createTask({ name: 'List', type: 'list', state: 'Idle', data: { setUri: set.uri, storeUri: store.uri } })
  t.equal(task.state, 'Idle')
  t.equal((await admin.updateTask(task, { schedule: 'daily' })).schedule, 'daily')
  t.equal((await admin.getTask(task.uri)).name, 'List')
  t.equal((await admin.listTasks()).length, 1)
  t.equal(await failureStatus(admin.deleteObjectSet(set)), 409, 'set in use')

  // Logs: made by the server; here one is written through the backend as a run would.
  const taskId = Number(new URL(task.uri).pathname.split('/').pop())
  const log = await s.backend.createTaskLog(taskId, Date.now())
  const writer = await s.backend.openTaskLogContent(log.id)
  await writer.write('# Started at 2024-01-01T00:00:00.000Z\n')
  await writer.close()
  await s.backend.finishTaskLog(log.id, 'Succeeded', Date.now())
  const logs = await admin.listTaskLogs()
  t.equal(logs.length, 1)
  t.equal((await admin.getTaskLog(logs[0]!.uri)).resultType, 'Succeeded')
  t.equal(await admin.getTaskLogContent(logs[0]!), '# Started at 2024-01-01T00:00:00.000Z\n')
  await admin.deleteTaskLog(logs[0]!)
  await admin.deleteTask(task)
  await admin.deleteObjectStore(store)
  await admin.deleteObjectSet(set)

  const dura = await fakeDuraStore(t)
  t.same(await admin.listProviderAccounts(dura, 'u', 'p'), [{ id: '0', primary: true, type: 'AMAZON_S3' }])
  t.same(await admin.listSpaces(dura, 'u', 'p', '0'), [{ id: 'fedora-backups' }, { id: 'images' }])

  // A session: form login, cookie-authenticated writes (X-Requested-With passes CSRF), logout.
  const browserLike = new CloudSyncNodeClient({ serviceUri })
  await browserLike.login('bob', 'pw')
  t.equal((await browserLike.getCurrentUser()).name, 'bob')
  const mine = await browserLike.createObjectSet({ name: 'Mine', type: 'pidList', data: 'a:1' })
  await browserLike.logout()
  t.equal(await failureStatus(browserLike.getObjectSet(mine)), 401, 'logged out')
  await admin.deleteUser(bob)
  t.equal(await failureStatus(admin.getUser(bob)), 404)
})
