/**
 * The SQLite backend's exclusive mode (the one `cloudsync()` uses for its
 * embedded database): the file is held by one process, and users and
 * sessions are served from memory between writes. Real files, real SQLite.
 */
import t from 'tap'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { openSqliteBackend } from '../src/backend/sqlite/index.js'
import type { SqliteBackend, SqliteBackendOptions } from '../src/backend/sqlite/index.js'
import { BackendError } from '../src/backend/types.js'
import type { SessionRecord } from '../src/middleware/context.js'

function open(dir: string, extra: Partial<SqliteBackendOptions> = {}): SqliteBackend {
  const backend = openSqliteBackend({ dataDir: dir, sessionPurgeIntervalMs: 0, exclusive: true, ...extra })
  t.teardown(() => backend.close())
  return backend
}

const session = (userId: number, data: Record<string, unknown> = {}): SessionRecord => ({ userId, createdAt: Date.now(), lastSeenAt: Date.now(), data })

t.test('a second process or connection cannot open an exclusively held database', async (t) => {
  const dir = t.testdir()
  const first = open(dir)
  await first.createUser({ name: 'alice', password: 'pw', admin: false, enabled: true })
  for (const exclusive of [true, false]) {
    t.throws(() => openSqliteBackend({ dataDir: dir, exclusive, busyTimeoutMs: 20, sessionPurgeIntervalMs: 0 }), {
      message: /in use by another process.*Stop the other CloudSync server on this data directory/,
    }, `a second backend (exclusive: ${exclusive}) is refused with a clear message`)
  }
  await first.close()
  const second = open(dir)
  t.same((await second.listUsers()).map((u) => u.name), ['alice'], 'once closed, the next one opens it with the data intact')
})

t.test('options are checked', async (t) => {
  const dir = t.testdir()
  t.throws(() => openSqliteBackend({ dataDir: dir, exclusive: 'yes' as unknown as boolean }), { name: 'TypeError', message: /"exclusive" must be a boolean/ })
  for (const bad of [0, -1, 1.5, 2_000_000, '100']) {
    t.throws(() => openSqliteBackend({ dataDir: dir, checkpointPages: bad as number }), { name: 'TypeError', message: /"checkpointPages"/ })
  }
})

t.test('the users list is one frozen array until the next write, and every write shows at once', async (t) => {
  const backend = open(t.testdir())
  const alice = await backend.createUser({ name: 'alice', password: 'pw', admin: true, enabled: true })
  const first = await backend.listUsers()
  t.equal(await backend.listUsers(), first, 'unchanged users: the same array')
  t.ok(Object.isFrozen(first) && Object.isFrozen(first[0]), 'frozen, so nobody can change what others share')

  const bob = await backend.createUser({ name: 'bob', password: 'pw', admin: false, enabled: true })
  const afterCreate = await backend.listUsers()
  t.not(afterCreate, first)
  t.same(afterCreate.map((u) => u.name), ['alice', 'bob'], 'create')

  await backend.updateUser(bob.id, { name: 'robert', enabled: false })
  t.same((await backend.listUsers()).map((u) => [u.name, u.enabled]), [['alice', true], ['robert', false]], 'update')
  t.same(await backend.getUser(bob.id), { id: bob.id, name: 'robert', admin: false, enabled: false })

  await backend.deleteUser(alice.id)
  t.same((await backend.listUsers()).map((u) => u.name), ['robert'], 'delete')
  t.equal(await backend.getUser(alice.id), undefined)

  // A failed write changes nothing and the lists stay right.
  await t.rejects(backend.updateUser(bob.id, { name: 'robert' }).then(() => backend.createUser({ name: 'robert', password: 'x', admin: false, enabled: true })), { constructor: BackendError, code: 'name_taken' })
  t.same((await backend.listUsers()).map((u) => u.name), ['robert'])
})

t.test('a remembered unknown user id is forgotten when that user is created', async (t) => {
  const backend = open(t.testdir())
  const carol = await backend.createUser({ name: 'carol', password: 'pw', admin: false, enabled: true })
  t.equal(await backend.getUser(carol.id + 1), undefined)
  const dave = await backend.createUser({ name: 'dave', password: 'pw', admin: false, enabled: true })
  t.equal(dave.id, carol.id + 1)
  t.same(await backend.getUser(dave.id), dave)
  t.equal(backend.getUserSync(dave.id)?.name, 'dave', 'the synchronous read agrees')
})

t.test('initialization and password checks see the same users', async (t) => {
  const backend = open(t.testdir())
  t.same(await backend.listUsers(), [])
  const admin = await backend.initialize({ name: 'admin', password: 'admin-pw' })
  t.same((await backend.listUsers()).map((u) => u.id), [admin.id], 'the initial admin appears')
  t.same(await backend.verifyPassword('admin', 'admin-pw'), admin)
  await backend.updateUser(admin.id, { password: 'new-pw' })
  t.equal(await backend.verifyPassword('admin', 'admin-pw'), undefined, 'the old password no longer works')
  t.same(await backend.verifyPassword('admin', 'new-pw'), admin)
})

t.test('sessions: read from memory, but every write, delete and expiry shows at once', async (t) => {
  const backend = open(t.testdir())
  const store = backend.sessions
  await store.set('s1', session(1, { n: 1 }), 60_000)
  const a = store.getSync('s1')!
  t.same(a.data, { n: 1 })
  a.data.n = 99
  t.same(store.getSync('s1')!.data, { n: 1 }, 'each read is a fresh copy: changing one does not change the store')

  await store.set('s1', session(1, { n: 2 }), 60_000)
  t.same(store.getSync('s1')!.data, { n: 2 }, 'replaced')
  await store.destroy('s1')
  t.equal(store.getSync('s1'), undefined, 'destroyed')

  await store.set('s2', session(2), 60_000)
  await store.set('s3', session(2), 60_000)
  t.ok(store.getSync('s2') && store.getSync('s3'))
  await store.destroyByUser(2)
  t.equal(store.getSync('s2'), undefined, 'all sessions of a user end')
  t.equal(store.getSync('s3'), undefined)

  const user = await backend.createUser({ name: 'erin', password: 'pw', admin: false, enabled: true })
  await store.set('s4', session(user.id), 60_000)
  t.ok(store.getSync('s4'))
  await backend.deleteUser(user.id)
  t.equal(store.getSync('s4'), undefined, 'deleting the user ends its remembered session too')

  t.equal(store.size, 0, 'size counts the stored rows')
  await store.set('short', session(5), 40)
  t.equal(store.size, 1)
  t.ok(store.getSync('short'))
  await new Promise((resolve) => setTimeout(resolve, 60))
  t.equal(store.getSync('short'), undefined, 'an expired session is gone even though it was read before')
  t.equal(await store.get('short'), undefined)
})

t.test('the WAL file stays bounded under many single-statement updates', async (t) => {
  const dir = t.testdir()
  const backend = open(dir, { checkpointPages: 100 })
  const set = await backend.createObjectSet({ name: 'Demo', type: 'pidPattern', data: 'demo:*' })
  for (let i = 0; i < 2000; i++) await backend.updateObjectSet(set.id, { name: 'Demo' })
  const wal = statSync(join(dir, 'cloudsync.db-wal')).size
  // One page per commit: without automatic checkpoints this would be about 2000 pages.
  t.ok(wal < 300 * 4200, `WAL is ${wal} bytes after 2000 commits with checkpoints every 100 pages`)
  t.same(await backend.getObjectSet(set.id), { id: set.id, name: 'Demo', type: 'pidPattern', data: 'demo:*' })
})

t.test('updating an object set merges, and reports missing sets and name clashes', async (t) => {
  const backend = open(t.testdir())
  const a = await backend.createObjectSet({ name: 'A', type: 'pidPattern', data: 'a:*' })
  const b = await backend.createObjectSet({ name: 'B', type: 'pidList', data: 'b:1' })
  t.same(await backend.updateObjectSet(a.id, { data: 'a:1*' }), { id: a.id, name: 'A', type: 'pidPattern', data: 'a:1*' })
  t.same(await backend.updateObjectSet(a.id, { name: 'A2', type: 'pidList', data: 'a:1 a:2' }), { id: a.id, name: 'A2', type: 'pidList', data: 'a:1 a:2' })
  await t.rejects(backend.updateObjectSet(a.id, { name: 'B' }), { constructor: BackendError, code: 'name_taken', message: /"B"/ })
  t.same(await backend.getObjectSet(a.id), { id: a.id, name: 'A2', type: 'pidList', data: 'a:1 a:2' }, 'a refused update changes nothing')
  await t.rejects(backend.updateObjectSet(b.id + 100, { name: 'C' }), { constructor: BackendError, code: 'not_found' })
})

t.test('shared mode: another connection\'s writes are seen (nothing is remembered)', async (t) => {
  const dir = t.testdir()
  const one = open(dir, { exclusive: false })
  const two = open(dir, { exclusive: false })
  await one.createUser({ name: 'alice', password: 'pw', admin: false, enabled: true })
  const before = await one.listUsers()
  t.notOk(Object.isFrozen(before), 'a fresh array per call')
  const bob = await two.createUser({ name: 'bob', password: 'pw', admin: false, enabled: true })
  t.same((await one.listUsers()).map((u) => u.name), ['alice', 'bob'])
  t.same(await one.getUser(bob.id), bob)
  await two.updateUser(bob.id, { enabled: false })
  t.equal((await one.getUser(bob.id))?.enabled, false)
  await one.sessions.set('x', session(bob.id), 60_000)
  t.ok(two.sessions.getSync('x'))
  await one.sessions.destroy('x')
  t.equal(two.sessions.getSync('x'), undefined)
})
