/**
 * Group commit in the SQLite backend: the set, store and task writes of one
 * event-loop turn share one transaction, each write still stands or falls on
 * its own, and no promise settles before its write is committed. Real files,
 * real SQLite; a second connection shows what is on disk.
 */
import t from 'tap'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { GroupCommit } from '../src/backend/sqlite/group-commit.js'
import { SqliteDatabase } from '../src/backend/sqlite/db.js'
import type { Database } from '../src/backend/sqlite/db.js'
import { openSqliteBackend } from '../src/backend/sqlite/index.js'
import type { SqliteBackend, SqliteBackendOptions } from '../src/backend/sqlite/index.js'
import { BackendError } from '../src/backend/types.js'

function open(dir: string, extra: Partial<SqliteBackendOptions> = {}): SqliteBackend {
  const backend = openSqliteBackend({ dataDir: dir, sessionPurgeIntervalMs: 0, ...extra })
  t.teardown(() => backend.close())
  return backend
}

/** A second connection on the same file: it sees only committed data. */
function reader(backend: SqliteBackend): Database {
  const db = new SqliteDatabase(backend.databasePath, { timeout: 2000 })
  t.teardown(() => db.close())
  return db
}

/** Names of the sets a test made (a new database starts with one built-in set). */
const setNames = (db: Database): string[] =>
  db.prepare('SELECT name FROM object_sets WHERE id > (SELECT MIN(id) FROM object_sets) ORDER BY id').all<{ name: string }>().map((r) => r.name)
const pidSet = (name: string) => ({ name, type: 'pidList' as const, data: JSON.stringify({ pids: ['demo:1'] }) })

t.test('options: groupCommit is a boolean and defaults to exclusive', async (t) => {
  const dir = t.testdir()
  t.throws(() => openSqliteBackend({ dataDir: dir, groupCommit: 1 as unknown as boolean }), { name: 'TypeError', message: /"groupCommit" must be a boolean/ })
})

t.test('every promise settles only after its write is committed', async (t) => {
  const backend = open(t.testdir(), { groupCommit: true })
  const disk = reader(backend)
  const writes = ['one', 'two', 'three'].map((name) => backend.createObjectSet(pidSet(name)))
  t.same(setNames(disk), [], 'queued writes are not yet on disk in the turn they were made')
  const created = await Promise.all(writes)
  t.same(created.map((s) => s.name), ['one', 'two', 'three'], 'each caller gets its own row, in the order written')
  t.same(setNames(disk), ['one', 'two', 'three'], 'by the time the promises settle, another connection sees all of them')

  const renamed = backend.updateObjectSet(created[0]!.id, { name: 'first' })
  t.equal((await backend.getObjectSet(created[0]!.id))?.name, 'one', 'a read in the same turn sees the last committed state')
  t.equal((await renamed).name, 'first')
  t.same(setNames(disk), ['first', 'two', 'three'])
})

t.test('a failing write rejects alone; the rest of its batch commits', async (t) => {
  const backend = open(t.testdir(), { groupCommit: true })
  const disk = reader(backend)
  const a = await backend.createObjectSet(pidSet('a'))
  const store = await backend.createObjectStore({ name: 'dir', type: 'filesystem', data: JSON.stringify({ path: t.testdirName }) })
  const task = await backend.createTask({ name: 'copy', type: 'copy', state: 'Idle', data: '{}', dependencies: { setIds: [a.id], storeIds: [store.id] } })

  const results = await Promise.allSettled([
    backend.createObjectSet(pidSet('b')),
    backend.createObjectSet(pidSet('a')), // name taken: one statement, rolled back alone
    backend.deleteObjectSet(a.id), // in use by the task: a transaction, rolled back to its savepoint
    backend.updateObjectSet(a.id, { name: 'a2' }),
    backend.updateObjectSet(9999, { name: 'nobody' }),
    backend.createObjectSet(pidSet('c')),
  ])
  t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'rejected', 'fulfilled', 'rejected', 'fulfilled'])
  const reasons = results.map((r) => (r.status === 'rejected' ? (r.reason as BackendError).code : undefined))
  t.same(reasons, [undefined, 'name_taken', 'in_use', undefined, 'not_found', undefined], 'each failure is the backend error for that write')
  t.same(setNames(disk), ['a2', 'b', 'c'], 'on disk: exactly the writes that succeeded')

  await backend.deleteTask(task.id)
  await backend.deleteObjectSet(a.id)
  t.same(setNames(disk), ['b', 'c'], 'writes that depend on earlier ones, in order')
})

t.test('one turn of writes is one commit', async (t) => {
  // The WAL grows by a frame per page each commit changes: 50 separate
  // commits of the same row write at least 50 frames, one group commit a few.
  const walFrames = (b: SqliteBackend) => (statSync(b.databasePath + '-wal').size - 32) / (4096 + 24)
  for (const groupCommit of [false, true]) {
    const backend = open(t.testdir(), { groupCommit, checkpointPages: 100_000 })
    const set = await backend.createObjectSet(pidSet('s'))
    const before = walFrames(backend)
    await Promise.all(Array.from({ length: 50 }, (_, i) => backend.updateObjectSet(set.id, { name: `s${i}` })))
    const written = walFrames(backend) - before
    if (groupCommit) t.ok(written <= 5, `group commit: ${written} WAL frames for 50 updates`)
    else t.ok(written >= 50, `one commit per write: ${written} WAL frames for 50 updates`)
    t.equal((await backend.getObjectSet(set.id))?.name, 's49', 'the last write wins')
  }
})

t.test('when another process holds the write lock, the batch is refused and nothing is half done', async (t) => {
  const backend = open(t.testdir(), { groupCommit: true, busyTimeoutMs: 20 })
  const other = reader(backend)
  other.exec('BEGIN IMMEDIATE')
  const results = await Promise.allSettled([backend.createObjectSet(pidSet('x')), backend.createObjectSet(pidSet('y'))])
  t.same(results.map((r) => r.status), ['rejected', 'rejected'])
  t.match((results[0] as PromiseRejectedResult).reason, { code: /^SQLITE_BUSY/ }, 'the lock error, for the caller to report')
  other.exec('ROLLBACK')
  t.equal((await backend.createObjectSet(pidSet('z'))).name, 'z', 'once the lock is free, writes go through')
  t.same(setNames(other), ['z'])
})

t.test('close commits what is queued', async (t) => {
  const dir = t.testdir()
  const backend = openSqliteBackend({ dataDir: dir, sessionPurgeIntervalMs: 0, exclusive: true })
  const written = backend.createObjectSet(pidSet('late'))
  await backend.close()
  t.equal((await written).name, 'late', 'the write settled')
  const again = open(dir, { exclusive: true })
  t.same((await again.listObjectSets()).map((s) => s.name).slice(1), ['late'], 'and is in the file after a restart')
})

t.test('a write that takes the whole transaction down fails the writes before it, and the rest start over', async (t) => {
  const db = new SqliteDatabase(join(t.testdir(), 'g.db'))
  t.teardown(() => db.close())
  db.exec('CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)')
  const put = db.prepare('INSERT INTO kv VALUES (?, ?)')
  const writes = new GroupCommit(db)
  const results = await Promise.allSettled([
    writes.run(() => put.run('a', '1')),
    writes.run(() => {
      db.exec('ROLLBACK') // what SQLite does itself on a disk-full or I/O error
      throw new Error('disk full')
    }),
    writes.run(() => put.run('b', '2')),
  ])
  t.same(results.map((r) => r.status), ['rejected', 'rejected', 'fulfilled'])
  t.match((results[0] as PromiseRejectedResult).reason, { message: 'disk full' }, 'the write rolled back with it gets that error')
  t.same(db.prepare('SELECT k FROM kv').all(), [{ k: 'b' }], 'only the write after it is on disk')
  t.notOk(db.inTransaction)
})

t.test('a failing commit fails every write of its batch and leaves no transaction open', async (t) => {
  const db = new SqliteDatabase(join(t.testdir(), 'g.db'))
  t.teardown(() => db.close())
  db.exec('PRAGMA foreign_keys = ON; CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)')
  const writes = new GroupCommit(db)
  const results = await Promise.allSettled([
    writes.run(() => db.prepare('INSERT INTO p VALUES (1)').run()),
    writes.run(() => db.prepare('INSERT INTO c VALUES (2)').run()), // checked at COMMIT
  ])
  t.same(results.map((r) => r.status), ['rejected', 'rejected'])
  t.match((results[0] as PromiseRejectedResult).reason, { code: 'SQLITE_CONSTRAINT_FOREIGNKEY' })
  t.same(db.prepare('SELECT * FROM p').all(), [], 'nothing of the batch was kept')
  t.notOk(db.inTransaction)
  t.equal((await writes.run(() => db.prepare('INSERT INTO p VALUES (3)').run())).changes, 1, 'the next write works')
})
