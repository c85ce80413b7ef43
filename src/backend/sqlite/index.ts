/**
 * The embedded default backend: one SQLite file (better-sqlite3) plus task-log
 * files, all under one data directory.
 *
 *     <dataDir>/cloudsync.db        users, sessions, sets, stores, tasks, logs
 *     <dataDir>/secret.key          AES-256 key for object-store data (0600)
 *     <dataDir>/tasklogs/tasklog-{id}.txt
 *
 * The driver is synchronous; reads run their SQL at once and return a
 * settled promise. Set, store and task writes run at once too, or with
 * `groupCommit` together at the end of the event-loop turn (one commit for
 * all, each promise settled after it). Writes that check before they write
 * run in immediate transactions, so the rules hold even when several
 * processes share the file.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs'
import { isAbsolute, join, resolve } from 'node:path'
import type {
  Backend,
  NewTask,
  NewUser,
  ObjectSetRecord,
  ObjectStoreRecord,
  ResultType,
  TaskChanges,
  TaskDependencies,
  TaskLogRecord,
  TaskLogWriter,
  TaskRecord,
  TaskState,
  UserChanges,
  UserRecord
} from '../types.js'
import { SqliteDatabase } from './db.js'
import type { Database } from './db.js'
import { ObjectSetTable, ObjectStoreTable } from './entities.js'
import { GroupCommit } from './group-commit.js'
import { migrate } from './schema.js'
import { loadKey, SecretBox } from './secrets.js'
import { SqliteSessionStore } from './sessions.js'
import { TaskLogTable } from './task-logs.js'
import { TaskTable } from './tasks.js'
import { UserTable } from './users.js'

export { SqliteSessionStore } from './sessions.js'
export { SCHEMA_VERSION } from './schema.js'

export interface SqliteBackendOptions {
  /** Directory for the database, key file and task logs; created (0700) if missing. */
  dataDir: string
  /** Database file name inside `dataDir`. Default `'cloudsync.db'`. */
  filename?: string
  /** How long a write waits for another process's lock, in ms. Default `5000`. */
  busyTimeoutMs?: number
  /** How often expired sessions are deleted, in ms; `0` disables. Default `600000` (10 min). */
  sessionPurgeIntervalMs?: number
  /**
   * Hold the database file exclusively (SQLite `locking_mode = EXCLUSIVE`):
   * no other process can open it while this backend is open, reads take no
   * file locks, and users are served from memory between writes. Default
   * `false` (processes may share the file); `cloudsync()` turns it on for the
   * backend it creates, whose task manager must be the only one on its data.
   */
  exclusive?: boolean
  /**
   * WAL pages after which a commit copies them into the database file (SQLite
   * `wal_autocheckpoint`). Each checkpoint waits for the disk twice (fsync),
   * pausing every request for up to a few milliseconds; fewer, larger ones
   * keep response times even under write load. The WAL file grows to about
   * 4 KiB times this. Default `10000` (about 40 MiB).
   */
  checkpointPages?: number
  /**
   * Commit the set, store and task writes of one event-loop turn together, in
   * one transaction at the end of the turn (see `group-commit.ts`). Each write
   * still succeeds or fails on its own, and its promise settles only after
   * the commit, so nothing is answered before it is durable. Under concurrent
   * writes this saves most of the per-commit cost. Default: the value of
   * `exclusive`. With a shared file the write lock is then held until the end
   * of the turn.
   */
  groupCommit?: boolean
}

const FILENAME_RE = /^[^/\\\0]+$/

function checkOptions(options: SqliteBackendOptions): Required<SqliteBackendOptions> {
  if (typeof options !== 'object' || options === null) throw new TypeError('openSqliteBackend: options must be an object with "dataDir"')
  const { dataDir, filename = 'cloudsync.db', busyTimeoutMs = 5000, sessionPurgeIntervalMs = 600_000, exclusive = false, checkpointPages = 10_000 } = options
  const { groupCommit = exclusive } = options
  if (typeof dataDir !== 'string' || dataDir.trim() === '') throw new TypeError('openSqliteBackend: option "dataDir" must be a non-empty directory path')
  if (typeof filename !== 'string' || !FILENAME_RE.test(filename) || filename === '.' || filename === '..') {
    throw new TypeError('openSqliteBackend: option "filename" must be a plain file name (no directories)')
  }
  if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0 || busyTimeoutMs > 0x7fffffff) {
    throw new TypeError('openSqliteBackend: option "busyTimeoutMs" must be a non-negative integer')
  }
  if (!Number.isSafeInteger(sessionPurgeIntervalMs) || sessionPurgeIntervalMs < 0 || sessionPurgeIntervalMs > 0x7fffffff) {
    throw new TypeError('openSqliteBackend: option "sessionPurgeIntervalMs" must be a non-negative integer')
  }
  if (typeof exclusive !== 'boolean') throw new TypeError('openSqliteBackend: option "exclusive" must be a boolean')
  if (!Number.isSafeInteger(checkpointPages) || checkpointPages < 1 || checkpointPages > 1_000_000) {
    throw new TypeError('openSqliteBackend: option "checkpointPages" must be an integer from 1 to 1000000')
  }
  if (typeof groupCommit !== 'boolean') throw new TypeError('openSqliteBackend: option "groupCommit" must be a boolean')
  return { dataDir: isAbsolute(dataDir) ? dataDir : resolve(dataDir), filename, busyTimeoutMs, sessionPurgeIntervalMs, exclusive, checkpointPages, groupCommit }
}

/**
 * The SQLite implementation of {@link Backend}. Create it with
 * {@link openSqliteBackend}; close it with {@link SqliteBackend.close}.
 *
 * @example
 * const backend = new SqliteBackend({ dataDir: '/var/lib/cloudsync' })
 * console.log(await backend.isInitialized())
 * await backend.close()
 */
export class SqliteBackend implements Backend {
  readonly sessions: SqliteSessionStore
  /** Absolute path of the data directory. */
  readonly dataDir: string
  /** Absolute path of the database file. */
  readonly databasePath: string
  private readonly db: Database
  private readonly users: UserTable
  private readonly sets: ObjectSetTable
  private readonly stores: ObjectStoreTable
  private readonly tasks: TaskTable
  private readonly logs: TaskLogTable
  /** Set, store and task writes grouped per turn (`groupCommit`), else run at once. */
  private readonly writes: GroupCommit | undefined
  private closing: Promise<void> | undefined

  constructor(options: SqliteBackendOptions) {
    const opts = checkOptions(options)
    this.dataDir = opts.dataDir
    this.databasePath = join(opts.dataDir, opts.filename)
    const logDir = join(opts.dataDir, 'tasklogs')
    mkdirSync(logDir, { recursive: true, mode: 0o700 })
    // Create the file ourselves so it starts private; SQLite gives its -wal
    // and -shm files the same permissions.
    closeSync(openSync(this.databasePath, 'a', 0o600))

    const db = new SqliteDatabase(this.databasePath, { timeout: opts.busyTimeoutMs })
    try {
      // Before WAL is entered: the WAL index then lives in this process's
      // memory instead of a shared-memory file, and reads lock nothing.
      if (opts.exclusive) db.pragma('locking_mode = EXCLUSIVE')
      db.pragma('journal_mode = WAL')
      db.pragma('synchronous = NORMAL')
      db.pragma(`wal_autocheckpoint = ${opts.checkpointPages}`)
      db.pragma('foreign_keys = ON')
      db.pragma(`busy_timeout = ${opts.busyTimeoutMs}`)
      // Statement journals (each write inside a group transaction has one) then
      // grow in small chunks; on disk-backed temp storage SQLite allocates
      // 64 KiB per statement, and the allocator returns it to the kernel each time.
      db.pragma('temp_store = MEMORY')
      migrate(db)
      const secrets = openSecrets(db, join(opts.dataDir, 'secret.key'))
      this.sessions = new SqliteSessionStore(db, opts.sessionPurgeIntervalMs, opts.exclusive)
      this.users = new UserTable(db, this.sessions, opts.exclusive)
      this.sets = new ObjectSetTable(db)
      this.stores = new ObjectStoreTable(db, secrets)
      this.stores.encryptPlaintextRows()
      this.tasks = new TaskTable(db)
      this.logs = new TaskLogTable(db, logDir)
    } catch (err) {
      db.close()
      throw isBusy(err) ? inUse(this.databasePath, err) : err
    }
    this.db = db
    this.writes = opts.groupCommit ? new GroupCommit(db) : undefined
  }

  // ---- service ----

  async isInitialized(): Promise<boolean> {
    return this.users.isInitialized()
  }

  initialize(admin: { name: string; password: string }): Promise<UserRecord> {
    return this.users.initialize(admin)
  }

  // ---- users ----

  async listUsers(): Promise<readonly UserRecord[]> {
    return this.users.list()
  }

  async getUser(id: number): Promise<UserRecord | undefined> {
    return this.users.get(id)
  }

  /**
   * Synchronous {@link getUser}: optional fast path for hosts that re-check
   * the session's user on every request. Not part of the {@link Backend} contract.
   */
  getUserSync(id: number): UserRecord | undefined {
    return this.users.get(id)
  }

  verifyPassword(name: string, password: string): Promise<UserRecord | undefined> {
    return this.users.verify(name, password)
  }

  createUser(user: NewUser): Promise<UserRecord> {
    return this.users.create(user)
  }

  updateUser(id: number, changes: UserChanges): Promise<UserRecord> {
    return this.users.update(id, changes)
  }

  async deleteUser(id: number): Promise<void> {
    this.users.delete(id)
  }

  // ---- object sets ----

  async listObjectSets(): Promise<ObjectSetRecord[]> {
    return this.sets.list()
  }

  async getObjectSet(id: number): Promise<ObjectSetRecord | undefined> {
    return this.sets.get(id)
  }

  createObjectSet(set: Omit<ObjectSetRecord, 'id'>): Promise<ObjectSetRecord> {
    return this.write(() => this.sets.create(set))
  }

  updateObjectSet(id: number, changes: Partial<Omit<ObjectSetRecord, 'id'>>): Promise<ObjectSetRecord> {
    return this.write(() => this.sets.update(id, changes))
  }

  deleteObjectSet(id: number): Promise<void> {
    return this.write(() => this.sets.delete(id))
  }

  // ---- object stores ----

  async listObjectStores(): Promise<ObjectStoreRecord[]> {
    return this.stores.list()
  }

  async getObjectStore(id: number): Promise<ObjectStoreRecord | undefined> {
    return this.stores.get(id)
  }

  createObjectStore(store: Omit<ObjectStoreRecord, 'id'>): Promise<ObjectStoreRecord> {
    return this.write(() => this.stores.create(store))
  }

  deleteObjectStore(id: number): Promise<void> {
    return this.write(() => this.stores.delete(id))
  }

  // ---- tasks ----

  async listTasks(): Promise<TaskRecord[]> {
    return this.tasks.list()
  }

  async getTask(id: number): Promise<TaskRecord | undefined> {
    return this.tasks.get(id)
  }

  /** The set and store ids recorded for a task (diagnostics; not part of the contract). */
  async getTaskDependencies(id: number): Promise<TaskDependencies | undefined> {
    return this.tasks.dependencies(id)
  }

  createTask(task: NewTask): Promise<TaskRecord> {
    return this.write(() => this.tasks.create(task))
  }

  updateTask(id: number, changes: TaskChanges, ifState?: TaskState): Promise<TaskRecord> {
    return this.write(() => this.tasks.update(id, changes, ifState))
  }

  deleteTask(id: number): Promise<void> {
    return this.write(() => this.tasks.delete(id))
  }

  // ---- task logs ----

  async listTaskLogs(): Promise<TaskLogRecord[]> {
    return this.logs.list()
  }

  async getTaskLog(id: number): Promise<TaskLogRecord | undefined> {
    return this.logs.get(id)
  }

  createTaskLog(taskId: number, startDate: number): Promise<TaskLogRecord> {
    return this.logs.create(taskId, startDate)
  }

  async finishTaskLog(id: number, resultType: Exclude<ResultType, 'Incomplete'>, finishDate: number): Promise<TaskLogRecord> {
    return this.logs.finish(id, resultType, finishDate)
  }

  deleteTaskLog(id: number): Promise<void> {
    return this.logs.delete(id)
  }

  openTaskLogContent(id: number): Promise<TaskLogWriter> {
    return this.logs.openContent(id)
  }

  readTaskLogContent(id: number): Promise<NodeJS.ReadableStream | undefined> {
    return this.logs.readContent(id)
  }

  /** Path of a task log's content file (it may not exist). */
  taskLogContentPath(id: number): string {
    return this.logs.contentPath(id)
  }

  /** A set, store or task write: queued for this turn's commit, or run now. */
  private write<T>(write: () => T): Promise<T> {
    return this.writes === undefined ? runNow(write) : this.writes.run(write)
  }

  // ---- lifecycle ----

  /** Stop the purge timer, commit queued writes, close open log writers, close the database. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.sessions.stop()
      this.writes?.flush()
      await this.logs.closeAll()
      this.writes?.flush()
      this.db.close()
    })()
    return this.closing
  }
}

/** A write run at once, its outcome as a settled promise (the driver is synchronous). */
function runNow<T>(write: () => T): Promise<T> {
  try {
    return Promise.resolve(write())
  } catch (err) {
    return Promise.reject(err)
  }
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY')
}

/** The start-up error when another process (or backend) holds the file. */
function inUse(file: string, cause: unknown): Error {
  return new Error(
    `The database ${file} is in use by another process. Stop the other CloudSync server on this data directory, or give this one its own data directory.`,
    { cause },
  )
}

/**
 * Load the key file, creating it on a fresh installation. Refuses to start
 * with a missing or different key when encrypted rows exist: they would be
 * unreadable, and a clear start-up error beats failures on every read.
 */
function openSecrets(db: Database, keyFile: string): SecretBox {
  const hasSecrets = db.prepare(`SELECT 1 FROM object_stores WHERE data LIKE 'enc1:%' LIMIT 1`).get() !== undefined
  const box = new SecretBox(loadKey(keyFile, !hasSecrets))
  const fingerprint = box.fingerprint()
  const recorded = db.prepare(`SELECT value FROM meta WHERE key = 'key_fingerprint'`).get<{ value: string }>()?.value
  if (recorded !== undefined && recorded !== fingerprint && hasSecrets) {
    throw new Error(`The key file ${keyFile} is not the key this database was encrypted with. Restore the matching secret.key from backup.`)
  }
  if (recorded !== fingerprint) {
    db.prepare(`INSERT INTO meta (key, value) VALUES ('key_fingerprint', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(fingerprint)
  }
  return box
}

/**
 * Open (creating if needed) the SQLite backend in `dataDir`.
 *
 * @example
 * import { openSqliteBackend } from 'cloudsync-kit/backend/sqlite'
 * const backend = openSqliteBackend({ dataDir: './data' })
 * if (!(await backend.isInitialized())) await backend.initialize({ name: 'admin', password: 's3cret' })
 * process.on('SIGTERM', () => void backend.close())
 */
export function openSqliteBackend(options: SqliteBackendOptions): SqliteBackend {
  return new SqliteBackend(options)
}
