import t from 'tap'
import path from 'node:path'
import { existsSync, mkdirSync, symlinkSync, readFileSync, readdirSync } from 'node:fs'
import { startTestServer, jsonBody } from './helpers/server.js'
import type { TestServer } from './helpers/server.js'
import { vj, vx } from './helpers/media.js'

async function make(s: TestServer, collection: string, root: string, fields: object): Promise<{ uri: string; path: string; body: any }> {
  const r = await s.admin('POST', `/api/rest/${collection}`, jsonBody({ [root]: fields }))
  if (r.status !== 201) throw new Error(`${collection}: ${r.status} ${r.text}`)
  const body = r.json()[root]
  return { uri: body.uri, path: new URL(body.uri).pathname, body }
}

t.test('object sets (spec §4.4)', async (t) => {
  const s = await startTestServer(t)
  // The UI's bodies (§3.13).
  const pattern = await make(s, 'objectSets', 'objectSet', { name: 'Demo objects', type: 'pidPattern', data: 'demo:*' })
  await make(s, 'objectSets', 'objectSet', { name: 'Two', type: 'pidList', data: 'demo:1\ndemo:2' })
  await make(s, 'objectSets', 'objectSet', { name: 'Q', type: 'query', data: '{"queryType":"SPARQL","queryText":"select ?s where {}"}' })
  const post = (fields: object) => s.admin('POST', '/api/rest/objectSets', jsonBody({ objectSet: fields }))
  for (const [fields, why] of [
    [{ name: ' ', type: 'pidPattern', data: '*' }, 'blank name'],
    [{ name: 'n'.repeat(257), type: 'pidPattern', data: '*' }, 'long name'],
    [{ name: 'a', type: 'PIDPATTERN', data: '*' }, 'type is case-sensitive'],
    [{ name: 'a', type: 'pidPattern', data: '  ' }, 'blank data'],
    [{ name: 'a', type: 'pidPattern', data: 'x'.repeat(32673) }, 'long data'],
    [{ name: 'a', type: 'query', data: '[1]' }, 'query not an object'],
    [{ name: 'a', type: 'query', data: '{"queryType":"SQL","queryText":"x"}' }, 'query type'],
    [{ name: 'a', type: 'query', data: '{"queryType":"iTQL","queryText":" "}' }, 'blank query text'],
    [{ id: 5, name: 'a', type: 'pidPattern', data: '*' }, 'id given']
  ] as const) t.equal((await post(fields)).status, 400, why)
  t.equal((await post({ name: 'Demo objects', type: 'pidList', data: 'x:1' })).status, 409, 'name in use')
  const trimmed = await make(s, 'objectSets', 'objectSet', { name: '  Padded  ', type: ' pidPattern ', data: ' a:* ' })
  t.same([trimmed.body.name, trimmed.body.type, trimmed.body.data], ['Padded', 'pidPattern', 'a:*'], 'fields are trimmed')

  // PATCH: 404, validation of merged set, 409, blank = unchanged.
  const patch = (p: string, fields: object) => s.admin('PATCH', p, jsonBody({ objectSet: fields }, vj('objectset'), vj('objectset')))
  t.equal((await patch('/api/rest/objectSets/999', { name: 'x' })).status, 404)
  t.equal((await patch(pattern.path, { type: 'query' })).status, 400, 'merged set must be valid')
  t.equal((await patch(pattern.path, { name: 'Two' })).status, 409)
  const edited = await patch(pattern.path, { name: '', data: 'demo:1*' })
  t.equal(edited.status, 200)
  t.same(edited.json().objectSet, { data: 'demo:1*', name: 'Demo objects', type: 'pidPattern', uri: pattern.uri })

  // XML list.
  const xml = await s.admin('GET', '/api/rest/objectSets', { headers: { Accept: vx('objectsets') } })
  t.match(xml.text, /<objectSets><objectSet><data>\*<\/data><name>All Objects<\/name>/)
  t.match(xml.text, /<data>demo:1\ndemo:2<\/data>/)

  // DELETE: 404 [D12], 204.
  t.equal((await s.admin('DELETE', '/api/rest/objectSets/999')).status, 404)
  t.equal((await s.admin('DELETE', trimmed.path)).status, 204)
  t.equal((await s.admin('DELETE', trimmed.path)).status, 404)
})

t.test('object stores (spec §4.5)', async (t) => {
  const s = await startTestServer(t)
  const fedora = await make(s, 'objectStores', 'objectStore', { name: 'Fedora Repository at host:8080', type: 'fedora', data: '{"url":"http://host:8080/fedora","username":"fedoraAdmin","password":"pw"}' })
  t.equal(fedora.body.data, '{"url":"http://host:8080/fedora","username":"fedoraAdmin"}', 'password redacted [D4]')
  const dura = await make(s, 'objectStores', 'objectStore', { name: 'DuraCloud Space s', type: 'duracloud', data: JSON.stringify({ url: 'https://h/durastore', username: 'u', password: 'p', providerId: 0, providerName: 'AMAZON', space: 's', prefix: '' }) })
  t.equal(JSON.parse(dura.body.data).providerId, '0', 'numbers become strings [D22]')
  t.equal(JSON.parse(dura.body.data).password, undefined)
  const dir = path.join(s.storeRoot, 'backup')
  const fs = await make(s, 'objectStores', 'objectStore', { name: 'Local Directory', type: 'filesystem', data: JSON.stringify({ path: dir }) })
  t.equal(fs.body.data, JSON.stringify({ path: dir }), 'no password: verbatim')
  t.ok(existsSync(dir), 'directory created')
  const raw = readFileSync(path.join(s.dataDir, 'cloudsync.db'))
  t.notOk(raw.includes(Buffer.from('fedoraAdmin","password":"pw')), 'store secrets encrypted at rest')

  const post = (fields: object) => s.admin('POST', '/api/rest/objectStores', jsonBody({ objectStore: fields }))
  const outside = await post({ name: 'x', type: 'filesystem', data: '{"path":"/etc"}' })
  t.equal(outside.status, 400, 'outside the roots [D7]')
  t.match(outside.json().detail, /CLOUDSYNC_STORE_ROOTS/)
  t.equal((await post({ name: 'x', type: 'filesystem', data: JSON.stringify({ path: path.join(s.storeRoot, '..', 'escape') }) })).status, 400, '.. resolved')
  mkdirSync(path.join(s.dataDir, 'elsewhere'))
  symlinkSync(path.join(s.dataDir, 'elsewhere'), path.join(s.storeRoot, 'link'))
  t.equal((await post({ name: 'x', type: 'filesystem', data: JSON.stringify({ path: path.join(s.storeRoot, 'link', 'd') }) })).status, 400, 'symlinks resolved')
  t.equal((await post({ name: 'x', type: 'filesystem', data: JSON.stringify({ path: path.join(s.storeRoot, 'a', 'b', 'c') }) })).status, 400, 'only one level is created')
  t.equal((await post({ name: 'x', type: 'filesystem', data: '{"path":"relative/dir"}' })).status, 400)
  t.equal((await post({ name: 'x', type: 'fedora', data: '{"url":"ftp://h","username":"u","password":"p"}' })).status, 400, 'url scheme')
  t.equal((await post({ name: 'x', type: 'fedora', data: '{"url":"http://h","username":"u"}' })).status, 400, 'missing member')
  t.equal((await post({ name: 'x', type: 'duracloud', data: '{"url":"http://h","username":"u","password":"p","providerId":"0"}' })).status, 400, 'missing space')
  t.equal((await post({ name: 'x', type: 's3', data: '{}' })).status, 400)
  t.equal((await post({ name: 'x', type: 'filesystem', data: 'not json' })).status, 400)
  t.equal((await post({ name: 'x', type: 'filesystem', data: JSON.stringify({ path: dir, pad: 'p'.repeat(1100) }) })).status, 400, 'data > 1024')
  const taken = await post({ name: 'Local Directory', type: 'filesystem', data: JSON.stringify({ path: path.join(s.storeRoot, 'fresh') }) })
  t.equal(taken.status, 409)
  t.notOk(existsSync(path.join(s.storeRoot, 'fresh')), 'a refused store leaves no directory behind')
  t.equal((await s.admin('PATCH', fs.path, jsonBody({ objectStore: { name: 'y' } }))).status, 405, 'stores cannot be updated')
  t.equal((await s.admin('DELETE', '/api/rest/objectStores/99')).status, 404)
  t.equal((await s.admin('GET', fedora.path + '.xml')).text.includes('<data>{"url":"http://host:8080/fedora","username":"fedoraAdmin"}</data>'), true)
  t.equal((await s.admin('DELETE', dura.path)).status, 204)
  t.equal(readdirSync(s.storeRoot).includes('backup'), true, 'deleting a store never deletes its directory')
})

t.test('tasks: validation, dependencies and the PATCH table (spec §4.6, §4.9)', async (t) => {
  const s = await startTestServer(t, { taskManager: false })
  const set = await make(s, 'objectSets', 'objectSet', { name: 'S', type: 'pidPattern', data: '*' })
  const storeA = await make(s, 'objectStores', 'objectStore', { name: 'A', type: 'filesystem', data: JSON.stringify({ path: path.join(s.storeRoot, 'a') }) })
  const storeB = await make(s, 'objectStores', 'objectStore', { name: 'B', type: 'filesystem', data: JSON.stringify({ path: path.join(s.storeRoot, 'b') }) })
  const listData = JSON.stringify({ setUri: set.uri + '.json', storeUri: storeA.uri })
  const copyData = JSON.stringify({ setUri: set.uri, queryStoreUri: storeA.uri, sourceStoreUri: storeA.uri, destStoreUri: storeB.uri, overwrite: 'true', includeManaged: true, copyExternal: 'false', copyRedirect: 'false' })
  const list = await make(s, 'tasks', 'task', { name: 'List S in A', type: 'list', state: 'Idle', data: listData })
  t.same(list.body, { data: listData, name: 'List S in A', state: 'Idle', type: 'list', uri: list.uri }, 'no schedule, no activeLogUri')
  const copy = await make(s, 'tasks', 'task', { name: 'Copy', type: 'copy', state: 'Idle', data: copyData, schedule: 'nightly' })
  t.equal(copy.body.schedule, 'nightly')

  const post = (fields: object) => s.admin('POST', '/api/rest/tasks', jsonBody({ task: fields }))
  for (const [fields, why] of [
    [{ name: 'x', type: 'list', data: listData }, 'state required'],
    [{ name: 'x', type: 'list', state: 'Running', data: listData }, 'state Running'],
    [{ name: 'x', type: 'sync', state: 'Idle', data: listData }, 'type'],
    [{ name: 'x', type: 'list', state: 'Idle', data: '{"setUri":"x"}' }, 'member missing'],
    [{ name: 'x', type: 'list', state: 'Idle', data: JSON.stringify({ setUri: storeA.uri, storeUri: storeA.uri }) }, 'setUri names a store'],
    [{ name: 'x', type: 'list', state: 'Idle', data: JSON.stringify({ setUri: `${s.api}/objectSets/77`, storeUri: storeA.uri }) }, 'unknown set'],
    [{ name: 'x', type: 'copy', state: 'Idle', data: copyData.replace('"overwrite":"true"', '"overwrite":"yes"') }, 'flag'],
    [{ name: 'x', type: 'list', state: 'Idle', data: listData, schedule: 's'.repeat(1025) }, 'schedule'],
    [{ name: 'x', type: 'list', state: 'Idle', data: listData, activeLogId: 3 }, 'activeLogId'],
    [{ name: 'x', type: 'list', state: 'Idle', data: 'nope' }, 'data not JSON']
  ] as const) t.equal((await post(fields)).status, 400, why)
  t.equal((await post({ name: 'Copy', type: 'list', state: 'Idle', data: listData })).status, 409)

  // Dependencies.
  t.equal((await s.admin('DELETE', set.path)).status, 409, 'set used by a task')
  t.equal((await s.admin('DELETE', storeB.path)).status, 409, 'store used as destination')

  const patch = (p: string, fields: object) => s.admin('PATCH', p, jsonBody({ task: fields }, vj('task'), vj('task')))
  // Idle: edit fields; schedule taken from the schedule field [D8].
  let r = await patch(list.path, { schedule: 'weekly', type: 'list' })
  t.equal(r.status, 200)
  t.equal(r.json().task.schedule, 'weekly')
  t.equal((await patch(list.path, { state: 'Pausing' })).status, 409, 'Idle → Pausing')
  t.equal((await patch(list.path, { state: 'paused' })).status, 400, 'unknown state name')
  t.equal((await patch(list.path, { type: 'copy' })).status, 400, 'merged task revalidated')
  t.equal((await patch(list.path, { name: 'Copy' })).status, 409)
  t.equal((await patch(list.path, { id: '999' })).status, 400)
  t.equal((await patch('/api/rest/tasks/999', { state: 'Starting' })).status, 404)
  // Retarget the copy task: dependencies are recomputed.
  r = await patch(copy.path, { data: JSON.stringify({ setUri: set.uri, queryStoreUri: storeA.uri, sourceStoreUri: storeA.uri, destStoreUri: storeA.uri, overwrite: false, includeManaged: false, copyExternal: true, copyRedirect: true }) })
  t.equal(r.status, 200)
  t.equal((await s.admin('DELETE', storeB.path)).status, 204, 'store no longer used')

  // Non-Idle states (set directly, as the manager would).
  const id = Number(list.path.split('/').pop())
  r = await patch(list.path, { state: 'Starting' })
  t.equal(r.json().task.state, 'Starting')
  t.equal(r.json().task.activeLogUri, undefined, 'no active log while Starting')
  t.equal((await patch(list.path, { state: 'Pausing' })).status, 409, 'Starting → Pausing [D26]')
  t.equal((await patch(list.path, { name: 'Renamed' })).status, 409, 'change while active')
  t.equal((await patch(list.path, { name: 'List S in A', state: 'Starting' })).status, 200, 'equal values accepted')
  t.equal((await s.admin('DELETE', list.path)).status, 409, 'active task')
  const log = await s.backend.createTaskLog(id, Date.now())
  const cell = async (from: string, to: string, expected: number) => {
    await s.backend.updateTask(id, { state: from as never, activeLogId: log.id })
    const reply = await patch(list.path, { state: to })
    t.equal(reply.status, expected, `${from} → ${to}`)
    if (expected === 200) t.equal(reply.json().task.state, to)
  }
  await cell('Running', 'Pausing', 200)
  await cell('Running', 'Canceling', 200)
  await cell('Running', 'Resuming', 409)
  await cell('Running', 'Idle', 409)
  await cell('Running', 'Running', 200)
  await cell('Resuming', 'Pausing', 200)
  await cell('Resuming', 'Canceling', 200)
  await cell('Pausing', 'Resuming', 200)
  await cell('Pausing', 'Canceling', 200)
  await cell('Paused', 'Resuming', 200)
  await cell('Paused', 'Canceling', 200)
  await cell('Paused', 'Starting', 409)
  await cell('Canceling', 'Resuming', 409)
  await cell('Canceling', 'Idle', 409)
  await cell('Starting', 'Canceling', 200)
  await s.backend.updateTask(id, { state: 'Running', activeLogId: log.id })
  r = await s.admin('GET', list.path + '.json')
  t.equal(r.json().task.activeLogUri, `${s.api}/taskLogs/${log.id}.json`)
  t.equal((await patch(list.path, { activeLogId: log.id + 1 })).status, 400)
  t.equal((await patch(list.path, { activeLogId: String(log.id), state: 'Pausing' })).status, 200)
  t.equal((await s.admin('DELETE', `/api/rest/taskLogs/${log.id}`)).status, 409, 'active log [D31]')
  await s.backend.finishTaskLog(log.id, 'Canceled', Date.now())
  await s.backend.updateTask(id, { state: 'Idle', activeLogId: null })
  t.equal((await s.admin('DELETE', list.path)).status, 409, 'task with logs')
  const logView = await s.admin('GET', `/api/rest/taskLogs/${log.id}.xml`)
  t.match(logView.text, new RegExp(`<contentUri>${s.api}/taskLogs/${log.id}/content</contentUri>`), 'contentUri never suffixed [D19]')
  t.match(logView.text, /<resultType>Canceled<\/resultType><startDate>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z<\/startDate>/)
  t.equal((await s.admin('DELETE', `/api/rest/taskLogs/${log.id}`)).status, 204)
  t.equal((await s.admin('DELETE', list.path)).status, 204)
  t.equal((await s.admin('DELETE', list.path)).status, 404)
  t.equal((await s.admin('POST', '/api/rest/taskLogs', jsonBody({ taskLog: {} }))).status, 405, 'logs are made by the server')
})

t.test('races: one name, many creators; parallel state changes', async (t) => {
  const s = await startTestServer(t, { taskManager: false })
  const replies = await Promise.all(Array.from({ length: 20 }, () => s.admin('POST', '/api/rest/objectSets', jsonBody({ objectSet: { name: 'Same', type: 'pidPattern', data: '*' } }))))
  const statuses = replies.map((r) => r.status).sort()
  t.same(statuses, [201, ...Array(19).fill(409)], 'exactly one 201')
  const store = await make(s, 'objectStores', 'objectStore', { name: 'A', type: 'filesystem', data: JSON.stringify({ path: path.join(s.storeRoot, 'a') }) })
  const task = await make(s, 'tasks', 'task', { name: 'T', type: 'list', state: 'Idle', data: JSON.stringify({ setUri: `${s.api}/objectSets/1`, storeUri: store.uri }) })
  const id = Number(task.path.split('/').pop())
  await s.backend.updateTask(id, { state: 'Running' })
  const wanted = ['Pausing', 'Canceling', 'Pausing', 'Canceling', 'Pausing', 'Canceling', 'Pausing', 'Canceling']
  const results = await Promise.all(wanted.map((state) => s.admin('PATCH', task.path, jsonBody({ task: { state } }))))
  for (const r of results) t.ok(r.status === 200 || r.status === 409, `status ${r.status}`)
  const final = (await s.admin('GET', task.path)).json().task.state
  t.ok(['Pausing', 'Canceling'].includes(final), `final state ${final} is possible`)
})
