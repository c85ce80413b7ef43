/**
 * Object sets and object stores (spec §4.4, §4.5, §4.9).
 *
 * Deletes check the "in use" relation and delete inside one immediate
 * transaction, so a task created concurrently cannot end up referencing a
 * deleted entity. Store `data` is encrypted at rest; callers see plaintext.
 */
import { BackendError } from '../types.js'
import type { ObjectSetRecord, ObjectStoreRecord } from '../types.js'
import { isForeignKeyViolation, isId, isUniqueViolation } from './db.js'
import type { Database, Statement, Transaction } from './db.js'
import type { SecretBox } from './secrets.js'

type NewEntity<T> = Omit<T, 'id'>

function checkFields(entity: { name?: unknown; type?: unknown; data?: unknown }, what: string, partial: boolean): void {
  for (const field of ['name', 'type', 'data'] as const) {
    const value = entity[field]
    if (partial && value === undefined) continue
    if (typeof value !== 'string') throw new TypeError(`${what}: ${field} must be a string`)
  }
}

/**
 * Object-set rows. Used by {@link SqliteBackend}; not a public API.
 *
 * @example
 * new ObjectSetTable(db).create({ name: 'Demo', type: 'pidPattern', data: 'demo:*' })
 */
export class ObjectSetTable {
  private readonly listStmt: Statement
  private readonly byIdStmt: Statement
  private readonly insertStmt: Statement
  private readonly updateStmt: Statement
  private readonly inUseStmt: Statement
  private readonly deleteStmt: Statement
  private readonly deleteTx: Transaction<(id: number) => void>

  constructor(db: Database) {
    this.listStmt = db.prepare('SELECT id, name, type, data FROM object_sets ORDER BY id')
    this.byIdStmt = db.prepare('SELECT id, name, type, data FROM object_sets WHERE id = ?')
    this.insertStmt = db.prepare('INSERT INTO object_sets (name, type, data) VALUES (?, ?, ?)')
    // One statement reads, merges and writes: atomic without a transaction around it.
    this.updateStmt = db.prepare(
      'UPDATE object_sets SET name = COALESCE(?, name), type = COALESCE(?, type), data = COALESCE(?, data) WHERE id = ? RETURNING id, name, type, data',
    )
    this.inUseStmt = db.prepare('SELECT 1 FROM task_set_deps WHERE set_id = ? LIMIT 1')
    this.deleteStmt = db.prepare('DELETE FROM object_sets WHERE id = ?')

    this.deleteTx = db.transaction((id: number) => {
      if (this.byIdStmt.get(id) === undefined) throw setNotFound(id)
      if (this.inUseStmt.get(id) !== undefined) throw setInUse(id)
      try {
        this.deleteStmt.run(id)
      } catch (err) {
        throw isForeignKeyViolation(err) ? setInUse(id) : err
      }
    })
  }

  list(): ObjectSetRecord[] {
    return this.listStmt.all<ObjectSetRecord>()
  }

  get(id: number): ObjectSetRecord | undefined {
    return isId(id) ? this.byIdStmt.get<ObjectSetRecord>(id) : undefined
  }

  create(set: NewEntity<ObjectSetRecord>): ObjectSetRecord {
    checkFields(set, 'createObjectSet', false)
    try {
      const info = this.insertStmt.run(set.name, set.type, set.data)
      return { id: Number(info.lastInsertRowid), name: set.name, type: set.type, data: set.data }
    } catch (err) {
      throw isUniqueViolation(err) ? setNameTaken(set.name) : err
    }
  }

  update(id: number, changes: Partial<NewEntity<ObjectSetRecord>>): ObjectSetRecord {
    if (!isId(id)) throw setNotFound(id)
    checkFields(changes, 'updateObjectSet', true)
    let row: ObjectSetRecord | undefined
    try {
      // all(), not get(): a statement left before its end commits on reset,
      // where SQLite runs no automatic WAL checkpoint (the WAL would grow without bound).
      row = this.updateStmt.all<ObjectSetRecord>(changes.name ?? null, changes.type ?? null, changes.data ?? null, id)[0]
    } catch (err) {
      throw isUniqueViolation(err) ? setNameTaken(changes.name ?? '') : err
    }
    if (row === undefined) throw setNotFound(id)
    return row
  }

  delete(id: number): void {
    if (!isId(id)) throw setNotFound(id)
    this.deleteTx.immediate(id)
  }
}

interface StoreRow {
  id: number
  name: string
  type: ObjectStoreRecord['type']
  data: string
}

/**
 * Object-store rows, `data` encrypted with `secrets`. Used by {@link SqliteBackend}; not a public API.
 *
 * @example
 * new ObjectStoreTable(db, box).create({ name: 'Dir', type: 'filesystem', data: '{"path":"/srv/x"}' })
 */
export class ObjectStoreTable {
  private readonly listStmt: Statement
  private readonly byIdStmt: Statement
  private readonly insertStmt: Statement
  private readonly inUseStmt: Statement
  private readonly deleteStmt: Statement
  private readonly deleteTx: Transaction<(id: number) => void>
  private readonly encryptAllTx: Transaction<() => number>
  private readonly secrets: SecretBox

  constructor(db: Database, secrets: SecretBox) {
    this.secrets = secrets
    this.listStmt = db.prepare('SELECT id, name, type, data FROM object_stores ORDER BY id')
    this.byIdStmt = db.prepare('SELECT id, name, type, data FROM object_stores WHERE id = ?')
    this.insertStmt = db.prepare('INSERT INTO object_stores (name, type, data) VALUES (?, ?, ?)')
    this.inUseStmt = db.prepare('SELECT 1 FROM task_store_deps WHERE store_id = ? LIMIT 1')
    this.deleteStmt = db.prepare('DELETE FROM object_stores WHERE id = ?')

    this.deleteTx = db.transaction((id: number) => {
      if (this.byIdStmt.get(id) === undefined) throw storeNotFound(id)
      if (this.inUseStmt.get(id) !== undefined) throw storeInUse(id)
      try {
        this.deleteStmt.run(id)
      } catch (err) {
        throw isForeignKeyViolation(err) ? storeInUse(id) : err
      }
    })

    const plaintextStmt = db.prepare(`SELECT id, data FROM object_stores WHERE data NOT LIKE 'enc1:%'`)
    const setDataStmt = db.prepare('UPDATE object_stores SET data = ? WHERE id = ?')
    this.encryptAllTx = db.transaction(() => {
      const rows = plaintextStmt.all<{ id: number; data: string }>()
      for (const row of rows) setDataStmt.run(this.secrets.encrypt(row.data), row.id)
      return rows.length
    })
  }

  list(): ObjectStoreRecord[] {
    return this.listStmt.all<StoreRow>().map((row) => this.decrypted(row))
  }

  get(id: number): ObjectStoreRecord | undefined {
    if (!isId(id)) return undefined
    const row = this.byIdStmt.get<StoreRow>(id)
    return row === undefined ? undefined : this.decrypted(row)
  }

  create(store: NewEntity<ObjectStoreRecord>): ObjectStoreRecord {
    checkFields(store, 'createObjectStore', false)
    try {
      const info = this.insertStmt.run(store.name, store.type, this.secrets.encrypt(store.data))
      return { id: Number(info.lastInsertRowid), name: store.name, type: store.type, data: store.data }
    } catch (err) {
      throw isUniqueViolation(err) ? new BackendError('name_taken', `An object store named "${store.name}" already exists.`) : err
    }
  }

  delete(id: number): void {
    if (!isId(id)) throw storeNotFound(id)
    this.deleteTx.immediate(id)
  }

  /**
   * Encrypt rows written in plaintext (imported from elsewhere, or by an
   * older tool). Returns how many were converted.
   */
  encryptPlaintextRows(): number {
    return this.encryptAllTx.immediate()
  }

  private decrypted(row: StoreRow): ObjectStoreRecord {
    row.data = this.secrets.decrypt(row.data)
    return row
  }
}

function setNotFound(id: number): BackendError {
  return new BackendError('not_found', `Object set ${id} does not exist.`)
}

function setNameTaken(name: string): BackendError {
  return new BackendError('name_taken', `An object set named "${name}" already exists.`)
}

function setInUse(id: number): BackendError {
  return new BackendError('in_use', `Object set ${id} is used by at least one task.`)
}

function storeNotFound(id: number): BackendError {
  return new BackendError('not_found', `Object store ${id} does not exist.`)
}

function storeInUse(id: number): BackendError {
  return new BackendError('in_use', `Object store ${id} is used by at least one task.`)
}
