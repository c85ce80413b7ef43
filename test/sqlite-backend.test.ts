import t from 'tap'
import { existsSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { openSqliteBackend, SCHEMA_VERSION, SqliteBackend } from '../src/backend/sqlite/index.js'
import { BackendError } from '../src/backend/types.js'
import type { Backend } from '../src/backend/types.js'

const Database = createRequire(import.meta.url)('better-sqlite3') as new (file: string) => {
  prepare(sql: string): { get(...p: unknown[]): any; all(...p: unknown[]): any[]; run(...p: unknown[]): unknown }
  pragma(sql: string, o?: { simple: boolean }): unknown
  close(): void
}

function open(dir: string, extra: object = {}): SqliteBackend {
  const backend = openSqliteBackend({ dataDir: dir, sessionPurgeIntervalMs: 0, ...extra })
  t.teardown(() => backend.close())
  return backend
}

/** What a BackendError with this code looks like, for t.rejects / t.match. */
function code(c: string) {
  return { constructor: BackendError, code: c }
}

async function readAll(stream: NodeJS.ReadableStream | undefined): Promise<string | undefined> {
  if (stream === undefined) return undefined
  let text = ''
  for await (const chunk of stream) text += chunk.toString()
  return text
}

t.test('options are validated when opening', async (t) => {
  const dir = t.testdir()
  t.throws(() => openSqliteBackend(undefined as never), TypeError)
  t.throws(() => openSqliteBackend({} as never), /dataDir/)
  t.throws(() => openSqliteBackend({ dataDir: '  ' }), /dataDir/)
  t.throws(() => openSqliteBackend({ dataDir: dir, filename: '../x.db' }), /filename/)
  t.throws(() => openSqliteBackend({ dataDir: dir, filename: '' }), /filename/)
  t.throws(() => openSqliteBackend({ dataDir: dir, busyTimeoutMs: -1 }), /busyTimeoutMs/)
  t.throws(() => openSqliteBackend({ dataDir: dir, sessionPurgeIntervalMs: 1.5 }), /sessionPurgeIntervalMs/)
  t.same(readdirSync(dir), [], 'nothing is created for invalid options')
})

t.test('first open creates a private data directory with the default set', async (t) => {
  const dir = join(t.testdir(), 'nested', 'data')
  const backend = open(dir, { filename: 'custom.db' })
  t.equal(backend.databasePath, join(dir, 'custom.db'))
  t.equal(statSync(dir).mode & 0o777, 0o700)
  t.equal(statSync(join(dir, 'custom.db')).mode & 0o077, 0, 'database file is not group/world readable')
  t.equal(statSync(join(dir, 'secret.key')).mode & 0o777, 0o600)
  t.ok(statSync(join(dir, 'tasklogs')).isDirectory())
  t.equal(await backend.isInitialized(), false)
  t.same(await backend.listObjectSets(), [{ id: 1, name: 'All Objects', type: 'pidPattern', data: '*' }])

  const raw = new Database(join(dir, 'custom.db'))
  t.teardown(() => raw.close())
  t.equal(raw.pragma('journal_mode', { simple: true }), 'wal')
  t.equal(raw.pragma('user_version', { simple: true }), SCHEMA_VERSION)
})

t.test('the default set is created once: a deleted set 1 stays deleted and ids are not reused', async (t) => {
  const dir = t.testdir()
  let backend = open(dir)
  await backend.deleteObjectSet(1)
  await backend.close()
  backend = open(dir)
  t.same(await backend.listObjectSets(), [])
  const set = await backend.createObjectSet({ name: 'All Objects', type: 'pidPattern', data: '*' })
  t.equal(set.id, 2)
})

t.test('initialize is atomic and succeeds once', async (t) => {
  const backend = open(t.testdir())
  // Two racing first-run requests: exactly one creates the admin.
  const results = await Promise.allSettled([
    backend.initialize({ name: 'admin', password: 'pw1' }),
    backend.initialize({ name: 'root', password: 'pw2' })
  ])
  const won = results.filter((r) => r.status === 'fulfilled')
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
  t.equal(won.length, 1)
  t.equal(lost.length, 1)
  t.match(lost[0]!.reason, code('already_initialized'))
  t.equal(await backend.isInitialized(), true)
  const users = await backend.listUsers()
  t.equal(users.length, 1)
  t.match(users[0], { id: 1, admin: true, enabled: true })
  await t.rejects(backend.initialize({ name: 'other', password: 'x' }), code('already_initialized'))
  t.equal((await backend.listUsers()).length, 1)
})

t.test('a failed initialize leaves the service uninitialized', async (t) => {
  const backend = open(t.testdir())
  await backend.createUser({ name: 'admin', password: 'pw', admin: false, enabled: true })
  await t.rejects(backend.initialize({ name: 'admin', password: 'pw' }), code('name_taken'))
  t.equal(await backend.isInitialized(), false, 'the flag was rolled back with the user insert')
  const user = await backend.initialize({ name: 'boss', password: 'pw' })
  t.match(user, { name: 'boss', admin: true, enabled: true })
  t.equal(await backend.isInitialized(), true)
})

t.test('object-store data is encrypted at rest and returned as plaintext', async (t) => {
  const dir = t.testdir()
  const secret = 'Sup3r-S3cret-Fedora-Passw0rd'
  const data = JSON.stringify({ url: 'http://fedora.example:8080/fedora', username: 'fedoraAdmin', password: secret })
  let backend = open(dir)
  const store = await backend.createObjectStore({ name: 'Fedora', type: 'fedora', data })
  t.equal(store.data, data)
  t.equal((await backend.getObjectStore(store.id))!.data, data)
  t.equal((await backend.listObjectStores())[0]!.data, data)

  const files = () => readdirSync(dir).filter((f) => f.startsWith('cloudsync.db')).map((f) => readFileSync(join(dir, f)))
  for (const file of files()) t.notOk(file.includes(secret), 'no database file holds the password while open')
  await backend.close()
  for (const file of files()) t.notOk(file.includes(secret), 'nor after close')
  const raw = new Database(join(dir, 'cloudsync.db'))
  const row = raw.prepare('SELECT data FROM object_stores').get()
  raw.close()
  t.match(row.data, /^enc1:/)

  backend = open(dir)
  t.equal((await backend.getObjectStore(store.id))!.data, data, 'readable again after reopen')
})

t.test('plaintext store rows (imported data) are encrypted on the next open', async (t) => {
  const dir = t.testdir()
  await open(dir).close()
  const data = '{"url":"http://h/fedora","username":"u","password":"Imported-Pa55"}'
  let raw = new Database(join(dir, 'cloudsync.db'))
  raw.prepare("INSERT INTO object_stores (name, type, data) VALUES ('Imported', 'fedora', ?)").run(data)
  raw.close()
  const backend = open(dir)
  t.equal((await backend.listObjectStores())[0]!.data, data)
  raw = new Database(join(dir, 'cloudsync.db'))
  t.match(raw.prepare('SELECT data FROM object_stores').get().data, /^enc1:/)
  raw.close()
})

t.test('a missing or wrong key file stops start-up instead of losing stores', async (t) => {
  const dir = t.testdir()
  let backend = open(dir)
  await backend.createObjectStore({ name: 'fs', type: 'filesystem', data: '{"path":"/srv/x"}' })
  await backend.close()
  const key = readFileSync(join(dir, 'secret.key'))

  unlinkSync(join(dir, 'secret.key'))
  t.throws(() => openSqliteBackend({ dataDir: dir }), /secret\.key is missing/)
  t.notOk(existsSync(join(dir, 'secret.key')), 'no new key was invented')

  writeFileSync(join(dir, 'secret.key'), Buffer.alloc(32, 1).toString('base64'))
  t.throws(() => openSqliteBackend({ dataDir: dir }), /not the key this database was encrypted with/)

  writeFileSync(join(dir, 'secret.key'), 'garbage')
  t.throws(() => openSqliteBackend({ dataDir: dir }), /does not hold a 32-byte/)

  writeFileSync(join(dir, 'secret.key'), key)
  backend = open(dir)
  t.equal((await backend.listObjectStores())[0]!.data, '{"path":"/srv/x"}')
})

t.test('a database from a newer version is refused', async (t) => {
  const dir = t.testdir()
  await open(dir).close()
  const raw = new Database(join(dir, 'cloudsync.db'))
  raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`)
  raw.close()
  t.throws(() => openSqliteBackend({ dataDir: dir }), /schema version/)
})

t.test('reopening the same data directory keeps everything', async (t) => {
  const dir = t.testdir()
  let backend: Backend = open(dir)
  const admin = await backend.initialize({ name: 'admin', password: 'adminpw' })
  const bob = await backend.createUser({ name: 'bob', password: 'bobpw', admin: false, enabled: true })
  await backend.sessions.set('sess-1', { userId: bob.id, createdAt: 1, lastSeenAt: 2, data: { returnTo: '/api/rest/users.json' } }, 60_000)
  const set = await backend.createObjectSet({ name: 'Demo', type: 'pidPattern', data: 'demo:*' })
  const store = await backend.createObjectStore({ name: 'Dir', type: 'filesystem', data: '{"path":"/srv/a"}' })
  const task = await backend.createTask({ name: 'List', type: 'list', state: 'Idle', data: '{}', dependencies: { setIds: [set.id], storeIds: [store.id] } })
  const log = await backend.createTaskLog(task.id, 1000)
  const writer = await backend.openTaskLogContent(log.id)
  await writer.write('# Started at 1970-01-01T00:00:01.000Z\n')
  await writer.close()
  await backend.finishTaskLog(log.id, 'Succeeded', 2000)
  await backend.deleteUser(bob.id)
  await backend.close()

  backend = open(dir)
  t.equal(await backend.isInitialized(), true)
  t.same(await backend.listUsers(), [admin])
  t.same(await backend.verifyPassword('admin', 'adminpw'), admin)
  t.equal(await backend.sessions.get('sess-1'), undefined, 'the deleted user\'s session stayed deleted')
  await backend.sessions.set('sess-2', { userId: admin.id, createdAt: 1, lastSeenAt: 2, data: {} }, 60_000)
  t.same(await backend.getTask(task.id), task)
  t.same(await backend.getObjectSet(set.id), set)
  t.same(await backend.getObjectStore(store.id), store)
  t.same(await backend.listTaskLogs(), [{ id: log.id, taskId: task.id, resultType: 'Succeeded', startDate: 1000, finishDate: 2000 }])
  t.equal(await readAll(await backend.readTaskLogContent(log.id)), '# Started at 1970-01-01T00:00:01.000Z\n')
  await t.rejects(backend.deleteObjectSet(set.id), code('in_use'), 'dependencies survived the restart')
  // Sequences continue after restart; the deleted bob's id is not handed out again.
  const carol = await backend.createUser({ name: 'carol', password: 'pw', admin: false, enabled: true })
  t.equal(carol.id, bob.id + 1)
  await backend.close()

  backend = open(dir)
  t.same(await backend.sessions.get('sess-2'), { userId: admin.id, createdAt: 1, lastSeenAt: 2, data: {} })
})

t.test('close is idempotent and later calls fail instead of hanging', async (t) => {
  const backend = openSqliteBackend({ dataDir: t.testdir() })
  await Promise.all([backend.close(), backend.close()])
  await backend.close()
  await t.rejects(backend.listUsers())
  await t.rejects(backend.sessions.get('x'))
})

t.test('open writers are closed with the backend', async (t) => {
  const backend = openSqliteBackend({ dataDir: t.testdir(), sessionPurgeIntervalMs: 0 })
  const task = await backend.createTask({ name: 'T', type: 'list', state: 'Idle', data: '{}', dependencies: { setIds: [1], storeIds: [] } })
  const log = await backend.createTaskLog(task.id, Date.now())
  const writer = await backend.openTaskLogContent(log.id)
  await writer.write('line\n')
  await backend.close()
  await t.rejects(writer.write('late\n'), /closed/)
  t.equal(readFileSync(backend.taskLogContentPath(log.id), 'utf8'), 'line\n')
})
