/**
 * Sessions in SQLite: a {@link SessionStore} that survives restarts and is
 * shared by every process using the same database file.
 *
 * Rows are keyed by SHA-256 of the session id, so the database file alone
 * does not hand out usable cookies. Expired rows are invisible to `get` at
 * once and deleted by a periodic purge (an unref'd timer that never keeps
 * the process alive).
 */
import { createHash } from 'node:crypto'
import type { SessionRecord, SessionStore } from '../../middleware/context.js'
import type { Database, Statement } from './db.js'

interface SessionRow {
  record: string
  expires_at: number | null
}

interface CachedRow {
  record: string
  expiresAt: number
}

/** Session rows remembered at most. */
const ROW_CACHE_MAX = 10_000

function keyOf(id: string): Buffer {
  return createHash('sha256').update(id, 'utf8').digest()
}

/**
 * The session store of {@link SqliteBackend} (`backend.sessions`).
 *
 * @example
 * const backend = openSqliteBackend({ dataDir: './data' })
 * await backend.sessions.set(id, { userId: 1, createdAt: now, lastSeenAt: now, data: {} }, 8 * 3600_000)
 * const record = await backend.sessions.get(id)
 */
export class SqliteSessionStore implements SessionStore {
  private readonly selectStmt: Statement
  private readonly upsertStmt: Statement
  private readonly deleteStmt: Statement
  private readonly deleteByUserStmt: Statement
  private readonly purgeStmt: Statement
  private readonly countStmt: Statement
  private timer: NodeJS.Timeout | undefined
  /** Rows read, by session id; only when this connection is the only writer. */
  private readonly rows: Map<string, CachedRow> | undefined

  /**
   * `purgeIntervalMs` 0 disables the periodic purge (call {@link purgeExpired}
   * yourself). `cached`: only this connection writes the file (exclusive
   * locking), so rows read may be remembered until they are written.
   */
  constructor(db: Database, purgeIntervalMs: number, cached = false) {
    this.rows = cached ? new Map() : undefined
    this.selectStmt = db.prepare('SELECT record, expires_at FROM sessions WHERE id = ? AND (expires_at IS NULL OR expires_at > ?)')
    this.upsertStmt = db.prepare(`INSERT INTO sessions (id, user_key, record, expires_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET user_key = excluded.user_key, record = excluded.record, expires_at = excluded.expires_at`)
    this.deleteStmt = db.prepare('DELETE FROM sessions WHERE id = ?')
    this.deleteByUserStmt = db.prepare('DELETE FROM sessions WHERE user_key = ?')
    this.purgeStmt = db.prepare('DELETE FROM sessions WHERE expires_at <= ?')
    this.countStmt = db.prepare('SELECT count(*) AS n FROM sessions')
    if (purgeIntervalMs > 0) {
      this.timer = setInterval(() => {
        try {
          this.purgeExpired()
        } catch {
          // A busy or closing database: the next round tries again.
        }
      }, purgeIntervalMs)
      this.timer.unref()
    }
  }

  /** Number of session rows (expired ones included until purged), like `MemoryStore.size`. */
  get size(): number {
    return this.countStmt.get<{ n: number }>()!.n
  }

  /** The session, or undefined when unknown, expired or unreadable. */
  async get(id: string): Promise<SessionRecord | undefined> {
    return this.getSync(id)
  }

  /** Synchronous {@link get}, for hosts that want to skip a promise per request. */
  getSync(id: string): SessionRecord | undefined {
    if (typeof id !== 'string' || id === '') return undefined
    const now = Date.now()
    let record: string | undefined
    const hit = this.rows?.get(id)
    if (hit !== undefined && hit.expiresAt > now) {
      record = hit.record
    } else {
      const row = this.selectStmt.get<SessionRow>(keyOf(id), now)
      if (row === undefined) return undefined
      record = row.record
      if (this.rows !== undefined) {
        // Bounded: every live session a client can present is remembered.
        if (this.rows.size >= ROW_CACHE_MAX) this.rows.clear()
        this.rows.set(id, { record, expiresAt: row.expires_at ?? Infinity })
      }
    }
    try {
      // Parsed per call: callers own (and change) the record they get.
      return JSON.parse(record) as SessionRecord
    } catch {
      return undefined
    }
  }

  /** Create or replace a session; it expires `ttlMs` from now (`Infinity`: never). */
  async set(id: string, record: SessionRecord, ttlMs: number): Promise<void> {
    if (typeof id !== 'string' || id === '') throw new TypeError('SessionStore.set: "id" must be a non-empty string')
    if (typeof ttlMs !== 'number' || Number.isNaN(ttlMs) || ttlMs < 0) throw new TypeError('SessionStore.set: "ttlMs" must be a non-negative number')
    const expiresAt = ttlMs === Infinity ? null : Date.now() + Math.ceil(ttlMs)
    const userKey = record.userId === undefined || record.userId === null ? null : String(record.userId)
    this.rows?.delete(id)
    this.upsertStmt.run(keyOf(id), userKey, JSON.stringify(record), expiresAt)
  }

  async destroy(id: string): Promise<void> {
    if (typeof id !== 'string' || id === '') return
    this.rows?.delete(id)
    this.deleteStmt.run(keyOf(id))
  }

  /** End every session of one user. `3` and `'3'` name the same user. */
  async destroyByUser(userId: string | number): Promise<void> {
    this.destroyByUserSync(userId)
  }

  /** Synchronous {@link destroyByUser}, usable inside a database transaction. */
  destroyByUserSync(userId: string | number): void {
    this.rows?.clear()
    this.deleteByUserStmt.run(String(userId))
  }

  /** Delete expired rows now; returns how many were removed. */
  purgeExpired(now = Date.now()): number {
    // Expired rows are never served from memory either (their expiry is kept).
    if (this.rows !== undefined) for (const [id, row] of this.rows) if (row.expiresAt <= now) this.rows.delete(id)
    return this.purgeStmt.run(now).changes
  }

  /** Stop the purge timer. */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
  }
}
