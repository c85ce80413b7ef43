import t from 'tap'
import { createHash, scryptSync } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { openSqliteBackend } from '../src/backend/sqlite/index.js'
import type { SqliteBackend } from '../src/backend/sqlite/index.js'
import { BackendError } from '../src/backend/types.js'
import type { SessionRecord } from '../src/middleware/context.js'

const Database = createRequire(import.meta.url)('better-sqlite3') as new (file: string) => {
  prepare(sql: string): { get(...p: unknown[]): any; all(...p: unknown[]): any[]; run(...p: unknown[]): unknown }
  close(): void
}

function open(dir: string, extra: object = {}): SqliteBackend {
  const backend = openSqliteBackend({ dataDir: dir, sessionPurgeIntervalMs: 0, ...extra })
  t.teardown(() => backend.close())
  return backend
}

/** A second, raw connection to the same file (WAL lets both work at once). */
function raw(backend: SqliteBackend) {
  const db = new Database(backend.databasePath)
  t.teardown(() => db.close())
  return db
}

function code(c: string) {
  return { constructor: BackendError, code: c }
}

const session = (userId: number | string | undefined, data: Record<string, unknown> = {}): SessionRecord =>
  ({ ...(userId === undefined ? {} : { userId }), createdAt: 1_700_000_000_000, lastSeenAt: 1_700_000_000_500, data })

t.test('create, list, get, update and delete users', async (t) => {
  const backend = open(t.testdir())
  const alice = await backend.createUser({ name: 'alice', password: 'a-pw', admin: true, enabled: true })
  const bob = await backend.createUser({ name: 'bob', password: 'b-pw', admin: false, enabled: false })
  t.same(alice, { id: 1, name: 'alice', admin: true, enabled: true })
  t.same(bob, { id: 2, name: 'bob', admin: false, enabled: false })
  t.same(await backend.listUsers(), [alice, bob], 'ascending id')
  t.same(await backend.getUser(2), bob)
  t.same(backend.getUserSync(2), bob, 'the synchronous fast path agrees')
  t.equal(await backend.getUser(3), undefined)
  t.equal(await backend.getUser(Number.NaN), undefined)
  t.equal(await backend.getUser(1.5), undefined)

  t.same(await backend.updateUser(bob.id, { enabled: true }), { ...bob, enabled: true }, 'absent fields keep their values')
  t.same(await backend.updateUser(bob.id, { name: 'robert', admin: true }), { id: 2, name: 'robert', admin: true, enabled: true })
  t.same(await backend.getUser(bob.id), { id: 2, name: 'robert', admin: true, enabled: true })
  t.same(await backend.verifyPassword('robert', 'b-pw'), { id: 2, name: 'robert', admin: true, enabled: true }, 'renamed user keeps password and roles')

  await backend.deleteUser(alice.id)
  t.equal(await backend.getUser(alice.id), undefined)
  await t.rejects(backend.deleteUser(alice.id), code('not_found'))
  await t.rejects(backend.updateUser(alice.id, { admin: false }), code('not_found'))
  await t.rejects(backend.updateUser(99, { password: 'x' }), code('not_found'))
  await t.rejects(backend.deleteUser(-1), code('not_found'))
  const carol = await backend.createUser({ name: 'alice', password: 'c', admin: false, enabled: true })
  t.equal(carol.id, 3, 'ids are never reused after a delete')
})

t.test('user names are unique and case-sensitive', async (t) => {
  const backend = open(t.testdir())
  await backend.createUser({ name: 'bob', password: 'pw', admin: false, enabled: true })
  const upper = await backend.createUser({ name: 'Bob', password: 'pw', admin: false, enabled: true })
  await t.rejects(backend.createUser({ name: 'bob', password: 'pw', admin: false, enabled: true }), code('name_taken'))
  await t.rejects(backend.updateUser(upper.id, { name: 'bob' }), code('name_taken'))
  t.same(await backend.updateUser(upper.id, { name: 'Bob' }), upper, 'renaming to its own name is fine')
  // Two concurrent creates of one name: the UNIQUE constraint decides.
  const results = await Promise.allSettled([
    backend.createUser({ name: 'dup', password: 'a', admin: false, enabled: true }),
    backend.createUser({ name: 'dup', password: 'b', admin: false, enabled: true })
  ])
  t.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
  t.match(results.find((r) => r.status === 'rejected'), { reason: code('name_taken') })
  t.equal((await backend.listUsers()).filter((u) => u.name === 'dup').length, 1)
})

t.test('bad argument types are refused, not stored', async (t) => {
  const backend = open(t.testdir())
  await t.rejects(backend.createUser({ name: 'x', password: 'pw', admin: 'true', enabled: true } as never), TypeError)
  await t.rejects(backend.createUser({ name: 7, password: 'pw', admin: true, enabled: true } as never), TypeError)
  await t.rejects(backend.createUser(null as never), TypeError)
  t.same(await backend.listUsers(), [])
})

t.test('verifyPassword: right password, wrong password, unknown and disabled users', async (t) => {
  const backend = open(t.testdir())
  const bob = await backend.createUser({ name: 'bob', password: 'correct horse', admin: false, enabled: true })
  const eve = await backend.createUser({ name: 'eve', password: 'pw', admin: false, enabled: false })
  t.same(await backend.verifyPassword('bob', 'correct horse'), bob)
  t.equal(await backend.verifyPassword('bob', 'correct horsE'), undefined)
  t.equal(await backend.verifyPassword('Bob', 'correct horse'), undefined, 'names are case-sensitive')
  t.equal(await backend.verifyPassword('nobody', 'correct horse'), undefined)
  t.same(await backend.verifyPassword('eve', 'pw'), eve, 'disabled users verify; the caller decides')
  t.equal(await backend.verifyPassword(undefined as never, 'pw'), undefined)

  // Unknown names cost a KDF run like known ones (no user enumeration by timing).
  let known = 0
  let unknown = 0
  for (let i = 0; i < 3; i++) {
    let start = process.hrtime.bigint()
    await backend.verifyPassword('bob', 'wrong')
    known += Number(process.hrtime.bigint() - start)
    start = process.hrtime.bigint()
    await backend.verifyPassword('nobody', 'wrong')
    unknown += Number(process.hrtime.bigint() - start)
  }
  const ratio = unknown / known
  t.ok(ratio > 0.33 && ratio < 3, `unknown/known time ratio ${ratio.toFixed(2)} should be near 1`)
})

t.test('passwords are stored as salted scrypt hashes and re-hashed on change', async (t) => {
  const backend = open(t.testdir())
  const db = raw(backend)
  const a = await backend.createUser({ name: 'a', password: 'same', admin: false, enabled: true })
  const b = await backend.createUser({ name: 'b', password: 'same', admin: false, enabled: true })
  const hashOf = (id: number) => db.prepare('SELECT password FROM users WHERE id = ?').get(id).password as string
  t.match(hashOf(a.id), /^\$scrypt\$ln=15,r=8,p=1\$/)
  t.not(hashOf(a.id), hashOf(b.id), 'same password, different hashes')
  t.notOk(readFileSync(backend.databasePath).includes('same'), 'the plaintext is nowhere in the file')

  await backend.sessions.set('a-session', session(a.id), 60_000)
  await backend.updateUser(a.id, { password: 'new one' })
  t.equal(await backend.verifyPassword('a', 'same'), undefined)
  t.same(await backend.verifyPassword('a', 'new one'), a)
  t.ok(await backend.sessions.get('a-session'), 'a password change keeps the user\'s sessions')
})

t.test('legacy SHA-1 and weak scrypt hashes verify and are upgraded on success', async (t) => {
  const backend = open(t.testdir())
  const db = raw(backend)
  const legacy = createHash('sha1').update('lëgacy', 'utf8').digest('hex')
  db.prepare('INSERT INTO users (name, password, admin, enabled) VALUES (?, ?, 1, 1)').run('old', legacy)
  const salt = Buffer.alloc(16, 3)
  const weakKey = scryptSync('weak', salt, 32, { N: 2 ** 10, r: 8, p: 1 })
  const weak = `$scrypt$ln=10,r=8,p=1$${salt.toString('base64').replace(/=+$/, '')}$${weakKey.toString('base64').replace(/=+$/, '')}`
  db.prepare('INSERT INTO users (name, password, admin, enabled) VALUES (?, ?, 0, 1)').run('weak', weak)
  const hashOf = (name: string) => db.prepare('SELECT password FROM users WHERE name = ?').get(name).password as string

  t.equal(await backend.verifyPassword('old', 'legacy'), undefined)
  t.equal(hashOf('old'), legacy, 'a failed login changes nothing')
  t.match(await backend.verifyPassword('old', 'lëgacy'), { name: 'old', admin: true, enabled: true })
  t.match(hashOf('old'), /^\$scrypt\$ln=15,r=8,p=1\$/, 'upgraded to scrypt')
  t.match(await backend.verifyPassword('old', 'lëgacy'), { name: 'old' }, 'and still verifies')

  t.match(await backend.verifyPassword('weak', 'weak'), { name: 'weak' })
  t.match(hashOf('weak'), /^\$scrypt\$ln=15,/, 'weak parameters upgraded')
  const current = hashOf('weak')
  await backend.verifyPassword('weak', 'weak')
  t.equal(hashOf('weak'), current, 'a current hash is not rewritten on every login')
})

t.test('deleting a user ends that user\'s sessions only', async (t) => {
  const backend = open(t.testdir())
  const bob = await backend.createUser({ name: 'bob', password: 'pw', admin: false, enabled: true })
  const ann = await backend.createUser({ name: 'ann', password: 'pw', admin: false, enabled: true })
  await backend.sessions.set('bob-1', session(bob.id), 60_000)
  await backend.sessions.set('bob-2', session(String(bob.id)), 60_000)
  await backend.sessions.set('ann-1', session(ann.id), 60_000)
  await backend.sessions.set('anon', session(undefined, { returnTo: '/x' }), 60_000)
  await backend.deleteUser(bob.id)
  t.equal(await backend.sessions.get('bob-1'), undefined)
  t.equal(await backend.sessions.get('bob-2'), undefined, 'string and number ids name the same user')
  t.ok(await backend.sessions.get('ann-1'))
  t.ok(await backend.sessions.get('anon'))
})

t.test('session store: get, set, destroy, destroyByUser', async (t) => {
  const backend = open(t.testdir())
  const store = backend.sessions
  t.equal(await store.get('missing'), undefined)
  t.equal(await store.get(''), undefined)
  const record = session(7, { returnTo: '/cloudsync/api/rest/users.json', nested: { n: [1, 'two', true] } })
  await store.set('s1', record, 60_000)
  t.same(await store.get('s1'), record, 'round-trips exactly, number user id included')
  t.equal((await store.get('s1'))!.userId, 7)
  await store.set('s2', session('alice'), 60_000)
  t.equal((await store.get('s2'))!.userId, 'alice', 'string user ids stay strings')

  const updated = { ...record, lastSeenAt: record.lastSeenAt + 1000, data: {} }
  await store.set('s1', updated, 60_000)
  t.same(await store.get('s1'), updated, 'set replaces')

  await store.destroy('s1')
  t.equal(await store.get('s1'), undefined)
  await store.destroy('s1')
  await store.destroy('')

  await store.set('s3', session('alice'), 60_000)
  await store.set('s4', session(8), 60_000)
  await store.destroyByUser!('alice')
  t.equal(await store.get('s2'), undefined)
  t.equal(await store.get('s3'), undefined)
  t.ok(await store.get('s4'))

  await t.rejects(store.set('', record, 1000), TypeError)
  await t.rejects(store.set('x', record, -1), TypeError)
  await t.rejects(store.set('x', record, Number.NaN), TypeError)
})

t.test('session ids are not stored in the clear', async (t) => {
  const backend = open(t.testdir())
  const id = 'Zq8v3XJ1uLk2Rr9NMe5b0wTtYhQpAaCd'
  await backend.sessions.set(id, session(1), 60_000)
  const rows = raw(backend).prepare('SELECT id, record FROM sessions').all()
  t.equal(rows.length, 1)
  t.notOk(Buffer.from(rows[0].id).includes(id))
  const files = readdirSync(backend.dataDir).filter((f) => f.startsWith('cloudsync.db'))
  for (const f of files) t.notOk(readFileSync(join(backend.dataDir, f)).includes(id), `${f} does not hold the session id`)
})

t.test('sessions expire and the purge removes them', async (t) => {
  const backend = open(t.testdir(), { sessionPurgeIntervalMs: 30 })
  const db = raw(backend)
  const count = () => db.prepare('SELECT count(*) AS n FROM sessions').get().n as number
  await backend.sessions.set('short', session(1), 40)
  await backend.sessions.set('long', session(1), 60_000)
  await backend.sessions.set('forever', session(1), Infinity)
  t.ok(await backend.sessions.get('short'))
  await new Promise((resolve) => setTimeout(resolve, 60))
  t.equal(await backend.sessions.get('short'), undefined, 'an expired session is gone at once')
  const deadline = Date.now() + 2000
  while (count() > 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(count(), 2, 'the periodic purge deleted the expired row')
  t.ok(await backend.sessions.get('long'))
  t.ok(await backend.sessions.get('forever'))
  t.equal(backend.sessions.purgeExpired(Date.now() + 120_000), 1, 'purgeExpired can be called directly')
  t.ok(await backend.sessions.get('forever'))
})
