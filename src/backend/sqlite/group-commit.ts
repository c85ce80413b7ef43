/**
 * Group commit: the writes queued during one turn of the event loop run
 * together, in order, in one transaction at the end of that turn, and each
 * caller's promise settles only after that transaction has committed.
 *
 * A commit costs more than the statement it makes durable (WAL frame writes
 * and their system calls); under concurrent load one commit then carries many
 * writes. Nothing is answered before it is committed, so a crash can lose
 * only writes nobody was told had happened.
 *
 * Each queued write must be atomic on its own: one statement (SQLite rolls
 * back just that statement when it fails inside the batch) or a
 * better-sqlite3 `db.transaction()` (which nests as a savepoint). A write that
 * throws rejects its own promise and leaves the others in the batch alone.
 * Not a public API; used by {@link SqliteBackend}.
 *
 * @example
 * const writes = new GroupCommit(db)
 * const row = await writes.run(() => updateStmt.all('name', 1)[0])
 */
import type { Database, Statement } from './db.js'

interface Queued {
  write: () => unknown
  resolve: (value: unknown) => void
  reject: (reason: unknown) => void
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown }

export class GroupCommit {
  private queue: Queued[] = []
  private readonly begin: Statement
  private readonly commit: Statement
  private readonly rollback: Statement

  constructor(private readonly db: Database) {
    this.begin = db.prepare('BEGIN IMMEDIATE')
    this.commit = db.prepare('COMMIT')
    this.rollback = db.prepare('ROLLBACK')
  }

  /** Queue `write` for this turn's transaction; resolves with its result once committed. */
  run<T>(write: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.queue.push({ write, resolve: resolve as (value: unknown) => void, reject }) === 1) setImmediate(this.flush)
    })
  }

  /** Run and commit everything queued now (also at the end of each turn; a no-op when nothing is queued). */
  readonly flush = (): void => {
    const batch = this.queue
    if (batch.length === 0) return
    this.queue = []
    // A lone write commits by itself: the statement's own autocommit is cheapest.
    if (batch.length === 1 || this.db.inTransaction) {
      for (const item of batch) settle(item, attempt(item.write))
      return
    }
    let start = 0
    while (start < batch.length) start = this.commitFrom(batch, start)
  }

  /** One transaction over `batch[start…]`; returns where the next one must start. */
  private commitFrom(batch: Queued[], start: number): number {
    try {
      this.begin.run()
    } catch (error) {
      for (const item of batch.slice(start)) item.reject(error)
      return batch.length
    }
    const outcomes: Outcome[] = []
    for (let i = start; i < batch.length; i++) {
      const outcome = attempt(batch[i]!.write)
      outcomes.push(outcome)
      // Some errors (I/O, disk full) make SQLite roll back the whole
      // transaction: the writes before this one are gone with it.
      if (!outcome.ok && !this.db.inTransaction) {
        failAll(batch, start, outcomes, outcome.error)
        return i + 1
      }
    }
    try {
      this.commit.run()
    } catch (error) {
      if (this.db.inTransaction) this.rollback.run()
      failAll(batch, start, outcomes, error)
      return batch.length
    }
    outcomes.forEach((outcome, k) => settle(batch[start + k]!, outcome))
    return batch.length
  }
}

/** The transaction over `batch[start…]` was rolled back by `error`: nothing in it holds. */
function failAll(batch: Queued[], start: number, outcomes: Outcome[], error: unknown): void {
  outcomes.forEach((outcome, k) => batch[start + k]!.reject(outcome.ok ? error : outcome.error))
}

function attempt(write: () => unknown): Outcome {
  try {
    return { ok: true, value: write() }
  } catch (error) {
    return { ok: false, error }
  }
}

function settle(item: Queued, outcome: Outcome): void {
  if (outcome.ok) item.resolve(outcome.value)
  else item.reject(outcome.error)
}
