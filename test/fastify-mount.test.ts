import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { AddressInfo } from 'node:net'
import { createFastifyApp } from '../examples/fastify.js'
import { request } from './helpers/http.js'

t.test('CloudSync mounted at /cloudsync inside a Fastify app', async (t) => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'cloudsync-fastify-'))
  const { app } = await createFastifyApp({ dataDir, taskManager: false })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => {
    await app.close()
    rmSync(dataDir, { recursive: true, force: true })
  })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  t.match((await request(base, 'GET', '/')).text, /My application/, 'the host app keeps its routes')
  let r = await request(base, 'POST', '/cloudsync/api/rest/service.json', { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ serviceInit: { initialAdminUsername: 'admin', initialAdminPassword: 'pw' } }) })
  t.equal(r.status, 200, 'CloudSync reads its own bodies')
  t.equal(r.json().service.tasksUri, `${base}/cloudsync/api/rest/tasks.json`)
  r = await request(base, 'POST', '/cloudsync/api/rest/objectSets/1?_method=PATCH', { basic: ['admin', 'pw'], headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ objectSet: { name: 'Everything' } }) })
  t.equal(r.status, 200, 'method override through middie')
  t.equal(r.json().objectSet.name, 'Everything')
  r = await request(base, 'GET', '/cloudsync/api/rest/users')
  t.equal(r.status, 401)
  t.equal(r.headers['content-type'], 'application/problem+json')
})
