/**
 * Users and service initialization (spec §4.2, §4.3, §6.5).
 *
 * Password hashing is slow (scrypt), so it always runs before the write
 * transaction opens; the transaction then re-reads what it depends on.
 * Initialization lives here because it is "create the first admin and set
 * the flag" in one transaction.
 */
import { BackendError } from '../types.js'
import type { NewUser, UserChanges, UserRecord } from '../types.js'
import { hashPassword, needsRehash, verifyDummy, verifyPassword } from '../../middleware/password.js'
import { isId, isUniqueViolation } from './db.js'
import type { Database, Statement, Transaction } from './db.js'
import type { SqliteSessionStore } from './sessions.js'

/** Ids remembered by `get` at most (known and unknown alike). */
const BY_ID_CACHE_MAX = 10_000

interface UserRow {
  id: number
  name: string
  admin: number
  enabled: number
}

/** Only the by-name lookup loads the hash: nothing else needs it. */
interface UserRowWithHash extends UserRow {
  password: string
}

function toRecord(row: UserRow): UserRecord {
  return { id: row.id, name: row.name, admin: row.admin === 1, enabled: row.enabled === 1 }
}

function nameTaken(name: string): BackendError {
  return new BackendError('name_taken', `A user named "${name}" already exists.`)
}

function notFound(id: number): BackendError {
  return new BackendError('not_found', `User ${id} does not exist.`)
}

function checkString(value: unknown, what: string): asserts value is string {
  if (typeof value !== 'string') throw new TypeError(`${what} must be a string`)
}

function checkBoolean(value: unknown, what: string): asserts value is boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${what} must be a boolean`)
}

/**
 * User rows and the service flag. Used by {@link SqliteBackend}; not a public API.
 *
 * @example
 * const users = new UserTable(db, sessions)
 * const bob = await users.create({ name: 'bob', password: 'pw', admin: false, enabled: true })
 */
export class UserTable {
  private readonly initializedStmt: Statement
  private readonly setInitializedStmt: Statement
  private readonly listStmt: Statement
  private readonly byIdStmt: Statement
  private readonly byNameStmt: Statement
  private readonly insertStmt: Statement
  private readonly updateStmt: Statement
  private readonly rehashStmt: Statement
  private readonly deleteStmt: Statement
  private readonly initializeTx: Transaction<(name: string, hash: string) => UserRecord>
  private readonly updateTx: Transaction<(id: number, changes: UserChanges, hash: string | null) => UserRecord>
  private readonly deleteTx: Transaction<(id: number) => void>
  /** Set when this connection is the only writer: reads can then be kept until our next write. */
  private readonly cached: boolean
  private listCache: readonly UserRecord[] | undefined
  private readonly byIdCache = new Map<number, UserRecord | null>()

  /** `cached`: only this connection writes the file (exclusive locking), so reads may be remembered. */
  constructor(db: Database, sessions: SqliteSessionStore, cached = false) {
    this.cached = cached
    this.initializedStmt = db.prepare('SELECT initialized FROM service WHERE id = 1')
    this.setInitializedStmt = db.prepare('UPDATE service SET initialized = 1 WHERE id = 1')
    this.listStmt = db.prepare('SELECT id, name, admin, enabled FROM users ORDER BY id')
    this.byIdStmt = db.prepare('SELECT id, name, admin, enabled FROM users WHERE id = ?')
    this.byNameStmt = db.prepare('SELECT id, name, password, admin, enabled FROM users WHERE name = ?')
    this.insertStmt = db.prepare('INSERT INTO users (name, password, admin, enabled) VALUES (?, ?, ?, ?)')
    this.updateStmt = db.prepare('UPDATE users SET name = ?, admin = ?, enabled = ?, password = COALESCE(?, password) WHERE id = ?')
    // Conditional on the hash we verified: a concurrent password change wins.
    this.rehashStmt = db.prepare('UPDATE users SET password = ? WHERE id = ? AND password = ?')
    this.deleteStmt = db.prepare('DELETE FROM users WHERE id = ?')

    this.initializeTx = db.transaction((name: string, hash: string) => {
      if (this.isInitialized()) throw new BackendError('already_initialized', 'The service is already initialized.')
      const record = this.insert(name, hash, true, true)
      this.setInitializedStmt.run()
      return record
    })

    this.updateTx = db.transaction((id: number, changes: UserChanges, hash: string | null) => {
      // Re-read under the write lock: the user may have changed while we hashed.
      const row = this.byIdStmt.get<UserRow>(id)
      if (row === undefined) throw notFound(id)
      const merged: UserRecord = {
        id,
        name: changes.name ?? row.name,
        admin: changes.admin ?? row.admin === 1,
        enabled: changes.enabled ?? row.enabled === 1
      }
      try {
        this.updateStmt.run(merged.name, merged.admin ? 1 : 0, merged.enabled ? 1 : 0, hash, id)
      } catch (err) {
        throw isUniqueViolation(err) ? nameTaken(merged.name) : err
      }
      return merged
    })

    this.deleteTx = db.transaction((id: number) => {
      if (this.deleteStmt.run(id).changes === 0) throw notFound(id)
      // Same transaction: no window in which the user is gone but a session lives.
      sessions.destroyByUserSync(id)
    })
  }

  isInitialized(): boolean {
    return this.initializedStmt.get<{ initialized: number }>()?.initialized === 1
  }

  async initialize(admin: { name: string; password: string }): Promise<UserRecord> {
    if (this.isInitialized()) throw new BackendError('already_initialized', 'The service is already initialized.')
    checkString(admin?.name, 'initialize: admin.name')
    checkString(admin.password, 'initialize: admin.password')
    const hash = await hashPassword(admin.password)
    try {
      return this.initializeTx.immediate(admin.name, hash)
    } finally {
      this.changed()
    }
  }

  /**
   * Every user by id. When cached, the same frozen array is returned until
   * the next write (the API then reuses its serialized form).
   */
  list(): readonly UserRecord[] {
    if (!this.cached) return this.listStmt.all<UserRow>().map(toRecord)
    this.listCache ??= Object.freeze(this.listStmt.all<UserRow>().map((row) => Object.freeze(toRecord(row))))
    return this.listCache
  }

  /** One user, or undefined (frozen when cached). */
  get(id: number): UserRecord | undefined {
    if (!isId(id)) return undefined
    const hit = this.byIdCache.get(id)
    if (hit !== undefined) return hit ?? undefined
    const row = this.byIdStmt.get<UserRow>(id)
    const record = row === undefined ? undefined : toRecord(row)
    if (this.cached) {
      // Bounded: unknown ids are remembered too, so a flood of them must not grow the map.
      if (this.byIdCache.size >= BY_ID_CACHE_MAX) this.byIdCache.clear()
      this.byIdCache.set(id, record === undefined ? null : Object.freeze(record))
    }
    return record
  }

  /** Forget remembered reads; called around every write to the users table. */
  private changed(): void {
    this.listCache = undefined
    this.byIdCache.clear()
  }

  async verify(name: string, password: string): Promise<UserRecord | undefined> {
    const row = typeof name === 'string' ? this.byNameStmt.get<UserRowWithHash>(name) : undefined
    if (row === undefined) {
      await verifyDummy(password)
      return undefined
    }
    if (!(await verifyPassword(password, row.password))) return undefined
    if (needsRehash(row.password)) {
      try {
        this.rehashStmt.run(await hashPassword(password), row.id, row.password)
      } catch {
        // The login itself succeeded; the upgrade is retried at the next one.
      }
    }
    // Re-read: the user may have been deleted or changed while we hashed.
    return this.get(row.id)
  }

  async create(user: NewUser): Promise<UserRecord> {
    checkString(user?.name, 'createUser: name')
    checkString(user.password, 'createUser: password')
    checkBoolean(user.admin, 'createUser: admin')
    checkBoolean(user.enabled, 'createUser: enabled')
    // Fail fast before spending a KDF run; the UNIQUE constraint still decides races.
    if (this.byNameStmt.get(user.name) !== undefined) throw nameTaken(user.name)
    const hash = await hashPassword(user.password)
    return this.insert(user.name, hash, user.admin, user.enabled)
  }

  async update(id: number, changes: UserChanges): Promise<UserRecord> {
    if (!isId(id)) throw notFound(id)
    if (changes.name !== undefined) checkString(changes.name, 'updateUser: name')
    if (changes.password !== undefined) checkString(changes.password, 'updateUser: password')
    if (changes.admin !== undefined) checkBoolean(changes.admin, 'updateUser: admin')
    if (changes.enabled !== undefined) checkBoolean(changes.enabled, 'updateUser: enabled')
    const current = this.byIdStmt.get<UserRow>(id)
    if (current === undefined) throw notFound(id)
    if (changes.name !== undefined && changes.name !== current.name && this.byNameStmt.get(changes.name) !== undefined) {
      throw nameTaken(changes.name)
    }
    const hash = changes.password === undefined ? null : await hashPassword(changes.password)
    try {
      return this.updateTx.immediate(id, changes, hash)
    } finally {
      this.changed()
    }
  }

  delete(id: number): void {
    if (!isId(id)) throw notFound(id)
    try {
      this.deleteTx.immediate(id)
    } finally {
      this.changed()
    }
  }

  private insert(name: string, hash: string, admin: boolean, enabled: boolean): UserRecord {
    this.changed()
    try {
      const info = this.insertStmt.run(name, hash, admin ? 1 : 0, enabled ? 1 : 0)
      return { id: Number(info.lastInsertRowid), name, admin, enabled }
    } catch (err) {
      throw isUniqueViolation(err) ? nameTaken(name) : err
    }
  }
}
