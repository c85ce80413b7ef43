/**
 * Nothing a client can send yields a 5xx: a corpus of malformed bodies,
 * headers, ids and methods against every route of a running server.
 */
import t from 'tap'
import path from 'node:path'
import { startTestServer, jsonBody, ADMIN } from './helpers/server.js'
import { basicHeader } from './helpers/http.js'

t.test('a corpus of hostile requests never yields a 5xx', async (t) => {
  const s = await startTestServer(t, { taskManager: false })
  const store = await s.admin('POST', '/api/rest/objectStores', jsonBody({ objectStore: { name: 'A', type: 'filesystem', data: JSON.stringify({ path: path.join(s.storeRoot, 'a') }) } }))
  const storeUri = store.json().objectStore.uri
  const task = await s.admin('POST', '/api/rest/tasks', jsonBody({ task: { name: 'T', type: 'list', state: 'Idle', data: JSON.stringify({ setUri: `${s.api}/objectSets/1`, storeUri }) } }))
  t.equal(task.status, 201)
  // The corpus acts as a second admin: its PATCHes and DELETEs of users/1 must not lock it out.
  const ACTOR: [string, string] = ['corpus-admin', 'corpus-pass']
  t.equal((await s.admin('POST', '/api/rest/users', jsonBody({ user: { name: ACTOR[0], password: ACTOR[1], admin: true, enabled: true } }))).status, 201)

  const paths = [
    'service', 'users', 'users/current', 'users/1', 'tasks', 'tasks/1', 'objectSets', 'objectSets/1', 'objectStores', 'objectStores/1',
    'taskLogs', 'taskLogs/1', 'taskLogs/1/content', 'taskLogs/1.json/content', 'duracloud/providerAccounts', 'duracloud/spaces',
    'users/0', 'users/-1', 'users/1e3', 'users/99999999999999999999', 'users/%00', 'users/..%2f..', 'tasks/1.json.xml', 'tasks/%E0%A4%A',
    'objectSets/1/extra', 'taskLogs/1/content.json', '', 'ＵＳＥＲＳ'
  ]
  const roots: Record<string, string> = { users: 'user', tasks: 'task', objectSets: 'objectSet', objectStores: 'objectStore', service: 'serviceInit' }
  const rootFor = (p: string) => roots[p.split('/')[0]!] ?? 'x'
  const bodies = (root: string): Array<[string, string | Buffer]> => [
    ['application/json', '{'],
    ['application/json', ''],
    ['application/json', 'null'],
    ['application/json', '[]'],
    ['application/json', '"str"'],
    ['application/json', '123'],
    ['application/json', `{"${root}": null}`],
    ['application/json', `{"${root}": []}`],
    ['application/json', `{"${root}": "text"}`],
    ['application/json', `{"${root}": {"__proto__": {"admin": true}}}`],
    ['application/json', `{"${root}": {"constructor": {"prototype": {}}}}`],
    ['application/json', `{"${root}": {"name": {"a": 1}, "type": [1], "data": {"x": 1}, "state": 5, "admin": {}, "enabled": [], "password": 1, "schedule": false, "id": {}}}`],
    ['application/json', `{"${root}": {"name": "${'n'.repeat(100000)}", "data": "{\\"setUri\\": 5}", "type": "list", "state": "Idle"}}`],
    ['application/json', `{"${root}": {"name": "x", "data": "{\\"setUri\\": \\"objectSets/1\\", \\"storeUri\\": \\"objectStores/99999999999999999999\\"}", "type": "list", "state": "Starting"}}`],
    ['application/json', `{"${root}": {"name": "x", "type": "filesystem", "data": "{\\"path\\": \\"\\u0000/x\\"}"}}`],
    ['application/json', `{"${root}": {"name": "x", "type": "query", "data": "{\\"queryType\\": \\"iTQL\\", \\"queryText\\": 5}"}}`],
    ['application/json', '['.repeat(5000) + ']'.repeat(5000)],
    ['application/json', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])],
    ['application/xml', `<${root}><name>x</name><name>y</name><admin>true</admin><admin>false</admin></${root}>`],
    ['application/xml', '<a><b><c>'.repeat(200)],
    ['application/xml', '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>'],
    ['application/xml', '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><x>&xxe;</x>'],
    ['application/xml', `<${root} attr="1"><name attr="2">x<b>bold</b></name></${root}>`],
    ['application/xml', 'not xml at all'],
    ['application/xml', ''],
    ['application/vnd.fcrepo-cloudsync.user+json', '{"user":{}}'],
    ['text/plain', 'hello'],
    ['application/x-www-form-urlencoded', 'url=http%3A%2F%2F127.0.0.1%3A1&username=u&password=p&providerAccountId=%00'],
    ['application/x-www-form-urlencoded', 'url=%E0%A4%A&username'],
    ['multipart/form-data; boundary=x', '--x--'],
    ['application/json; charset=latin1', '{}']
  ]
  const headerSets: Array<Record<string, string>> = [
    { Accept: 'application/json' },
    { Accept: ';;;,,,q=abc' },
    { Accept: 'application/xml;q=2, */*;q=-1' },
    { Accept: 'text/html', 'Sec-Fetch-Mode': 'navigate' },
    { Accept: '*/*', 'X-HTTP-Method-Override': 'DELETE, PATCH' },
    { Cookie: 'cloudsync.sid=' + 'A'.repeat(43) },
    { Cookie: 'cloudsync.sid=%%%; other=; =' },
    { 'If-None-Match': '"' + 'x'.repeat(5000) },
    { Origin: 'null', 'Sec-Fetch-Site': 'cross-site' }
  ]
  const methods = ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS', 'PUT', 'TRACE', 'PROPFIND']
  let count = 0
  const failures: string[] = []
  const check = async (method: string, p: string, options: Parameters<typeof s.req>[2]) => {
    const r = await s.req(method, p, options)
    count++
    // 502 is the specified answer when a DuraCloud look-up cannot reach its server (spec §4.8).
    if ((r.status >= 500 && r.status !== 502) || r.status < 100) failures.push(`${r.status} ${method} ${p} ${JSON.stringify(options?.headers)} ${r.text.slice(0, 200)}`)
  }
  const auth = basicHeader(...ACTOR)
  for (const p of paths) {
    const url = `/api/rest/${p}`
    for (const method of methods) {
      for (const headers of headerSets) await check(method, url, { headers: { ...headers, Authorization: auth } })
      if (method === 'POST' || method === 'PATCH') {
        for (const [type, body] of bodies(rootFor(p))) {
          await check(method, url, { headers: { 'Content-Type': type, Authorization: auth }, body })
          await check('POST', `${url}?_method=${method === 'POST' ? 'PATCH' : 'DELETE'}&_method=x`, { headers: { 'Content-Type': type, Authorization: auth }, body })
        }
      }
    }
  }
  for (const header of ['Basic', 'Basic ', 'Basic Og==', 'Basic ' + Buffer.from('nocolon').toString('base64'), 'Basic %%%', 'Basic ' + Buffer.from('a\u0000b:c\u0001').toString('base64'), 'Basic ' + 'A'.repeat(65536), 'Bearer x', 'basic ' + Buffer.from(':').toString('base64')]) {
    await check('GET', '/api/rest/users', { headers: { Authorization: header } })
  }
  t.same(failures, [], 'no 5xx answers')
  t.ok(count > 2000, `${count} requests tried`)
  // The server still answers normally afterwards.
  t.equal((await s.as(ACTOR, 'GET', '/api/rest/users')).status, 200)
})
