import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openSqliteBackend } from '../src/backend/sqlite/index.js'
import { checkTaskReferences, parseFlag, parseTaskData, resolveReference, taskDependencies } from '../src/backend/tasks/task-data.js'

t.test('resolveReference: last two segments, suffix stripped [D20]', async (t) => {
  t.equal(resolveReference('http://example.org/cs/api/rest/objectSets/1', 'objectSets'), 1)
  t.equal(resolveReference('http://example.org/cs/api/rest/objectSets/12.json', 'objectSets'), 12)
  t.equal(resolveReference('https://other.host/x/objectStores/3.xml?x=1#frag', 'objectStores'), 3)
  t.equal(resolveReference('objectStores/2', 'objectStores'), 2)
  t.equal(resolveReference('/cs/api/rest/objectStores/2', 'objectStores'), 2)
  t.equal(resolveReference('  objectSets/4  ', 'objectSets'), 4, 'trimmed')
  t.equal(resolveReference('objectStores/2', 'objectSets'), undefined, 'wrong collection')
  t.equal(resolveReference('objectSets/abc', 'objectSets'), undefined)
  t.equal(resolveReference('objectSets/1.5', 'objectSets'), undefined)
  t.equal(resolveReference('objectSets/-1', 'objectSets'), undefined)
  t.equal(resolveReference('objectSets/0', 'objectSets'), undefined)
  t.equal(resolveReference('objectSets/', 'objectSets'), undefined)
  t.equal(resolveReference('objectSets/99999999999999999999', 'objectSets'), undefined)
  t.equal(resolveReference('1', 'objectSets'), undefined)
  t.equal(resolveReference('xobjectSets/1', 'objectSets'), undefined)
  t.equal(resolveReference(1, 'objectSets'), undefined, 'not a string')
  t.equal(resolveReference(null, 'objectSets'), undefined)
})

t.test('parseFlag accepts strings and booleans [D22]', async (t) => {
  t.equal(parseFlag('true'), true)
  t.equal(parseFlag(' FALSE '), false)
  t.equal(parseFlag(true), true)
  t.equal(parseFlag(false), false)
  t.equal(parseFlag('yes'), undefined)
  t.equal(parseFlag(1), undefined)
  t.equal(parseFlag(undefined), undefined)
})

t.test('list and copy data', async (t) => {
  const list = parseTaskData('list', '{"setUri":"http://h/api/rest/objectSets/1.json","storeUri":"objectStores/2"}')
  t.same(list, { ok: true, data: { type: 'list', setId: 1, storeId: 2 }, dependencies: { setIds: [1], storeIds: [2] } })
  const copy = parseTaskData(
    'copy',
    JSON.stringify({
      setUri: 'objectSets/1',
      queryStoreUri: 'objectStores/2',
      sourceStoreUri: 'objectStores/2',
      destStoreUri: 'objectStores/3',
      overwrite: 'true',
      includeManaged: false,
      copyExternal: 'False',
      copyRedirect: true,
    }),
  )
  t.ok(copy.ok)
  if (copy.ok) {
    t.same(copy.data, {
      type: 'copy',
      setId: 1,
      queryStoreId: 2,
      sourceStoreId: 2,
      destStoreId: 3,
      overwrite: true,
      includeManaged: false,
      copyExternal: false,
      copyRedirect: true,
    })
    t.same(copy.dependencies, { setIds: [1], storeIds: [2, 3] }, 'distinct stores')
  }
  t.same(taskDependencies({ type: 'list', setId: 5, storeId: 6 }), { setIds: [5], storeIds: [6] })
})

t.test('invalid data explains itself', async (t) => {
  const bad = (type: string, text: string) => {
    const r = parseTaskData(type, text)
    return r.ok ? '' : r.message
  }
  t.match(bad('move', '{}'), /"list" or "copy"/)
  t.match(bad('list', 'not json'), /JSON object text/)
  t.match(bad('list', '[1]'), /JSON object/)
  t.match(bad('list', 'null'), /JSON object/)
  t.match(bad('list', '{"storeUri":"objectStores/1"}'), /"setUri" is missing/)
  t.match(bad('list', '{"setUri":"objectStores/1","storeUri":"objectStores/1"}'), /"setUri" must be the URI of an object set/)
  t.match(bad('list', '{"setUri":"objectSets/1","storeUri":" "}'), /"storeUri" is missing/)
  t.match(bad('copy', '{"setUri":"objectSets/1","queryStoreUri":"objectStores/1","sourceStoreUri":"objectStores/1","destStoreUri":"objectStores/1","overwrite":"true","includeManaged":"true","copyExternal":"true"}'), /"copyRedirect" is missing/)
  t.match(bad('copy', '{"setUri":"objectSets/1","queryStoreUri":"objectStores/1","sourceStoreUri":"objectStores/1","destStoreUri":"objectStores/1","overwrite":"maybe","includeManaged":"true","copyExternal":"true","copyRedirect":"true"}'), /"overwrite" must be "true" or "false"/)
  t.match(bad('list', '{"__proto__":{"setUri":"objectSets/1"},"storeUri":"objectStores/1"}'), /"setUri" is missing/, 'inherited members are not members')
})

t.test('checkTaskReferences against the SQLite backend', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'task-data-'))
  const backend = openSqliteBackend({ dataDir: dir })
  t.teardown(async () => {
    await backend.close()
    await rm(dir, { recursive: true, force: true })
  })
  const store = await backend.createObjectStore({ name: 's', type: 'filesystem', data: JSON.stringify({ path: dir }) })
  t.equal(await checkTaskReferences(backend, { type: 'list', setId: 1, storeId: store.id }), undefined, 'set 1 exists from the start')
  t.match(await checkTaskReferences(backend, { type: 'list', setId: 9, storeId: store.id }), /object set 9, which does not exist/)
  t.match(
    await checkTaskReferences(backend, { type: 'copy', setId: 1, queryStoreId: store.id, sourceStoreId: store.id, destStoreId: 77, overwrite: true, includeManaged: true, copyExternal: false, copyRedirect: false }),
    /"destStoreUri" names object store 77/,
  )
})
