/**
 * examples/reuse-override.ts: methodOverride + authenticate reused in a
 * plain Express 5 app, without anything of CloudSync.
 */
import t from 'tap'
import type { AddressInfo } from 'node:net'
import { createApp } from '../examples/reuse-override.js'
import { request, basicHeader } from './helpers/http.js'

const ALICE: [string, string] = ['alice', 'wonderland']

async function start(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const server = createApp({ users: [{ name: ALICE[0], password: ALICE[1] }] }).listen(0, '127.0.0.1')
  await new Promise<void>((resolve) => server.once('listening', () => resolve()))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

t.test('POST ?_method=DELETE with Basic credentials reaches the DELETE route', async (t) => {
  const base = await start(t)
  const before = await request(base, 'GET', '/notes', { basic: ALICE })
  t.equal(before.status, 200)
  t.same(before.json().notes.map((n: { id: number }) => n.id), [1, 2])
  t.equal(before.json().user, 'alice')

  const del = await request(base, 'POST', '/notes/1?_method=DELETE', { basic: ALICE })
  t.equal(del.status, 204)
  t.same((await request(base, 'GET', '/notes', { basic: ALICE })).json().notes.map((n: { id: number }) => n.id), [2], 'the note is gone')
  t.equal((await request(base, 'POST', '/notes/1?_method=DELETE', { basic: ALICE })).status, 404, 'deleting again: the DELETE route answered')

  const patch = await request(base, 'POST', '/notes/2', {
    basic: ALICE,
    headers: { 'X-HTTP-Method-Override': 'PATCH', 'Content-Type': 'application/json' },
    body: JSON.stringify({ text: 'Call Bob back' })
  })
  t.equal(patch.status, 200)
  t.same(patch.json(), { id: 2, text: 'Call Bob back' })

  const refused = await request(base, 'POST', '/notes/2?_method=GET', { basic: ALICE })
  t.equal(refused.status, 405)
  t.match(refused.json().error, /PATCH or DELETE/)
})

t.test('requests without valid credentials get 401', async (t) => {
  const base = await start(t)
  const anonymous = await request(base, 'POST', '/notes/1?_method=DELETE')
  t.equal(anonymous.status, 401)
  t.equal(anonymous.headers['www-authenticate'], 'Basic realm="Notes", charset="UTF-8"')
  t.match(anonymous.json().error, /Basic credentials/)

  const wrong = await request(base, 'GET', '/notes', { headers: { Authorization: basicHeader('alice', 'guess') } })
  t.equal(wrong.status, 401)
  const unknown = await request(base, 'GET', '/notes', { basic: ['mallory', 'wonderland'] })
  t.equal(unknown.status, 401)

  t.same((await request(base, 'GET', '/notes', { basic: ALICE })).json().notes.map((n: { id: number }) => n.id), [1, 2], 'nothing was deleted')
})
