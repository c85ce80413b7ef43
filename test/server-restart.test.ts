import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startChildServer } from './helpers/child-server.js'
import { request } from './helpers/http.js'

const ADMIN: [string, string] = ['admin', 'pw-admin']

t.test('a restart keeps all data and sessions; SIGTERM exits 0', async (t) => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'cloudsync-restart-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const env = { CLOUDSYNC_DATA: dataDir }

  let server = await startChildServer(env)
  t.teardown(() => server.child.kill('SIGKILL'))
  let r = await request(server.base, 'POST', '/api/rest/service', { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ serviceInit: { initialAdminUsername: ADMIN[0], initialAdminPassword: ADMIN[1] } }) })
  t.equal(r.status, 200)
  r = await request(server.base, 'POST', '/api/rest/objectSets', { basic: ADMIN, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ objectSet: { name: 'Kept', type: 'pidList', data: 'a:1 a:2' } }) })
  t.equal(r.status, 201)
  const login = await request(server.base, 'POST', '/login', { headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `username=${ADMIN[0]}&password=${ADMIN[1]}` })
  t.equal(login.status, 303)
  const cookie = String(login.headers['set-cookie']?.[0] ?? '').split(';')[0]!
  t.match(cookie, /=/)

  server.child.kill('SIGTERM')
  t.equal(await server.exited, 0, 'graceful stop exits 0')

  server = await startChildServer(env)
  r = await request(server.base, 'GET', '/api/rest/objectSets.json', { headers: { Cookie: cookie, 'X-Requested-With': 'XMLHttpRequest' } })
  t.equal(r.status, 200, 'the session survived the restart')
  t.same(r.json().objectSets.map((s: { name: string }) => s.name), ['All Objects', 'Kept'])
  r = await request(server.base, 'GET', '/api/rest/service.json')
  t.equal(r.json().service.initialized, true)
  server.child.kill('SIGINT')
  t.equal(await server.exited, 0, 'SIGINT exits 0 too')
})

t.test('a second server on the same data directory stops at start-up with a clear error', async (t) => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'cloudsync-twice-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const env = { CLOUDSYNC_DATA: dataDir }
  const first = await startChildServer(env)
  t.teardown(() => first.child.kill('SIGKILL'))
  await t.rejects(startChildServer(env, 30_000), {
    message: /CloudSync failed to start: The database .*cloudsync\.db is in use by another process.*Stop the other CloudSync server on this data directory/,
  })
  const r = await request(first.base, 'GET', '/api/rest/service.json')
  t.equal(r.status, 200, 'the first server is unaffected')
  first.child.kill('SIGTERM')
  t.equal(await first.exited, 0)
  const next = await startChildServer(env)
  t.teardown(() => next.child.kill('SIGKILL'))
  t.equal((await request(next.base, 'GET', '/api/rest/service.json')).status, 200, 'once it stopped, a new server starts on the directory')
  next.child.kill('SIGTERM')
  await next.exited
})
