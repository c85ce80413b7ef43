import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { AddressInfo } from 'node:net'
import { createApp } from '../examples/express-mount.js'
import { request } from './helpers/http.js'

t.test('CloudSync mounted at /cloudsync inside an Express app', async (t) => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'cloudsync-mount-'))
  const { app, cloud } = createApp({ dataDir, taskManager: false })
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  t.teardown(async () => {
    server.close()
    server.closeAllConnections()
    await cloud.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.equal((await request(base, 'GET', '/health')).text, '{"ok":true}', 'the host app keeps its routes')
  let r = await request(base, 'GET', '/cloudsync/api/rest/service.json')
  t.equal(r.status, 200)
  t.equal(r.json().service.usersUri, `${base}/cloudsync/api/rest/users.json`, 'links include the mount')
  r = await request(base, 'POST', '/cloudsync/api/rest/service', { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ serviceInit: { initialAdminUsername: 'admin', initialAdminPassword: 'pw' } }) })
  t.equal(r.status, 200)
  r = await request(base, 'POST', '/cloudsync/api/rest/objectSets.xml', { basic: ['admin', 'pw'], headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ objectSet: { name: 'n', type: 'pidPattern', data: '*' } }) })
  t.equal(r.status, 201)
  t.equal(r.headers.location, `${base}/cloudsync/api/rest/objectSets/2.xml`)
  r = await request(base, 'GET', '/cloudsync/api/rest/users', { headers: { Accept: 'text/html', 'Sec-Fetch-Mode': 'navigate' } })
  t.equal(r.status, 302)
  t.match(r.headers.location, /^\/cloudsync\/login/, 'login redirect stays inside the mount')
  r = await request(base, 'GET', '/cloudsync/js/cloudsync-api.js')
  t.equal(r.status, 200)
  t.equal(r.headers['content-type'], 'text/javascript; charset=utf-8')
  const other = await request(base, 'GET', '/cloudsync/js/cloudsync-client.js')
  t.equal(other.text, r.text, 'both client names serve the same file')
})
