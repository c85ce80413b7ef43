/**
 * Task logs (spec §4.7, §5.9, [D31]): rows in SQLite, content in
 * `<dataDir>/tasklogs/tasklog-{id}.txt`.
 *
 * Content writers append straight to the file descriptor (no user-space
 * buffer), one write at a time, so a reader opening the file sees every
 * line as soon as its `write()` has resolved.
 */
import { open, unlink } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { BackendError } from '../types.js'
import type { ResultType, TaskLogRecord, TaskLogWriter } from '../types.js'
import { isForeignKeyViolation, isId } from './db.js'
import type { Database, Statement, Transaction } from './db.js'

interface LogRow {
  id: number
  task_id: number
  result_type: ResultType
  start_date: number
  finish_date: number | null
}

const COLUMNS = 'id, task_id, result_type, start_date, finish_date'
const FINAL_RESULTS: ReadonlySet<string> = new Set(['Succeeded', 'Failed', 'Canceled'])

function toRecord(row: LogRow): TaskLogRecord {
  const record: TaskLogRecord = { id: row.id, taskId: row.task_id, resultType: row.result_type, startDate: row.start_date }
  if (row.finish_date !== null) record.finishDate = row.finish_date
  return record
}

function notFound(id: number): BackendError {
  return new BackendError('not_found', `Task log ${id} does not exist.`)
}

function checkDate(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`${what} must be epoch milliseconds`)
  return Math.round(value)
}

/** Appends to one content file; writes are serialized in call order. */
class ContentWriter implements TaskLogWriter {
  readonly logId: number
  private readonly handle: FileHandle
  private readonly onClose: (writer: ContentWriter) => void
  private tail: Promise<void> = Promise.resolve()
  private closing: Promise<void> | undefined

  constructor(logId: number, handle: FileHandle, onClose: (writer: ContentWriter) => void) {
    this.logId = logId
    this.handle = handle
    this.onClose = onClose
  }

  write(text: string): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(new Error(`The content writer of task log ${this.logId} is closed.`))
    if (typeof text !== 'string') return Promise.reject(new TypeError('TaskLogWriter.write: text must be a string'))
    // The file was opened with O_APPEND: each write lands at the current end.
    const done = this.tail.then(() => this.handle.appendFile(text, 'utf8'))
    // One failed write must not wedge the ones queued after it.
    this.tail = done.catch(() => {})
    return done
  }

  close(): Promise<void> {
    this.closing ??= this.tail.then(() => this.handle.close()).finally(() => this.onClose(this))
    return this.closing
  }
}

/**
 * Task-log rows and content files. Used by {@link SqliteBackend}; not a public API.
 *
 * @example
 * const logs = new TaskLogTable(db, '/var/lib/cloudsync/tasklogs')
 * const log = await logs.create(taskId, Date.now())
 */
export class TaskLogTable {
  private readonly dir: string
  private readonly writers = new Set<ContentWriter>()
  private readonly listStmt: Statement
  private readonly byIdStmt: Statement
  private readonly taskExistsStmt: Statement
  private readonly insertStmt: Statement
  private readonly finishStmt: Statement
  private readonly activeStmt: Statement
  private readonly deleteStmt: Statement
  private readonly createTx: Transaction<(taskId: number, startDate: number) => number>
  private readonly deleteTx: Transaction<(id: number) => void>

  /** `dir` must exist. */
  constructor(db: Database, dir: string) {
    this.dir = dir
    // Unfinished first, then newest finish first, ties newest id first (spec §3.12).
    this.listStmt = db.prepare(`SELECT ${COLUMNS} FROM task_logs ORDER BY finish_date IS NULL DESC, finish_date DESC, id DESC`)
    this.byIdStmt = db.prepare(`SELECT ${COLUMNS} FROM task_logs WHERE id = ?`)
    this.taskExistsStmt = db.prepare('SELECT 1 FROM tasks WHERE id = ?')
    this.insertStmt = db.prepare(`INSERT INTO task_logs (task_id, result_type, start_date) VALUES (?, 'Incomplete', ?)`)
    this.finishStmt = db.prepare('UPDATE task_logs SET result_type = ?, finish_date = ? WHERE id = ?')
    this.activeStmt = db.prepare(`SELECT id, state FROM tasks WHERE active_log_id = ? AND state <> 'Idle' LIMIT 1`)
    this.deleteStmt = db.prepare('DELETE FROM task_logs WHERE id = ?')

    this.createTx = db.transaction((taskId: number, startDate: number) => {
      if (this.taskExistsStmt.get(taskId) === undefined) throw new BackendError('not_found', `Task ${taskId} does not exist.`)
      try {
        return Number(this.insertStmt.run(taskId, startDate).lastInsertRowid)
      } catch (err) {
        throw isForeignKeyViolation(err) ? new BackendError('not_found', `Task ${taskId} does not exist.`) : err
      }
    })

    this.deleteTx = db.transaction((id: number) => {
      if (this.byIdStmt.get(id) === undefined) throw notFound(id)
      const task = this.activeStmt.get<{ id: number; state: string }>(id)
      if (task !== undefined) throw new BackendError('active', `Task log ${id} belongs to task ${task.id}, which is ${task.state}; it can be deleted once the task is Idle.`)
      this.deleteStmt.run(id) // a stale active_log_id on an Idle task is cleared (ON DELETE SET NULL)
    })
  }

  /** Where the content of log `id` lives. */
  contentPath(id: number): string {
    return join(this.dir, `tasklog-${id}.txt`)
  }

  list(): TaskLogRecord[] {
    return this.listStmt.all<LogRow>().map(toRecord)
  }

  get(id: number): TaskLogRecord | undefined {
    if (!isId(id)) return undefined
    const row = this.byIdStmt.get<LogRow>(id)
    return row === undefined ? undefined : toRecord(row)
  }

  async create(taskId: number, startDate: number): Promise<TaskLogRecord> {
    if (!isId(taskId)) throw new BackendError('not_found', `Task ${taskId} does not exist.`)
    const start = checkDate(startDate, 'createTaskLog: startDate')
    const id = this.createTx.immediate(taskId, start)
    try {
      // 'w' also empties a stale file left by an older database in this directory.
      await (await open(this.contentPath(id), 'w')).close()
    } catch (err) {
      // No row without its content file; keep the original error if this fails too.
      try { this.deleteStmt.run(id) } catch { /* database closed meanwhile */ }
      throw err
    }
    return { id, taskId, resultType: 'Incomplete', startDate: start }
  }

  finish(id: number, resultType: Exclude<ResultType, 'Incomplete'>, finishDate: number): TaskLogRecord {
    if (!FINAL_RESULTS.has(resultType)) throw new TypeError('finishTaskLog: resultType must be Succeeded, Failed or Canceled')
    const finish = checkDate(finishDate, 'finishTaskLog: finishDate')
    if (!isId(id) || this.finishStmt.run(resultType, finish, id).changes === 0) throw notFound(id)
    return this.get(id)!
  }

  async delete(id: number): Promise<void> {
    if (!isId(id)) throw notFound(id)
    this.deleteTx.immediate(id)
    const closing: Promise<void>[] = []
    for (const writer of this.writers) if (writer.logId === id) closing.push(writer.close())
    await Promise.allSettled(closing)
    try {
      await unlink(this.contentPath(id))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }

  async openContent(id: number): Promise<TaskLogWriter> {
    if (this.get(id) === undefined) throw notFound(id)
    const handle = await open(this.contentPath(id), 'a')
    const writer = new ContentWriter(id, handle, (w) => this.writers.delete(w))
    this.writers.add(writer)
    return writer
  }

  async readContent(id: number): Promise<NodeJS.ReadableStream | undefined> {
    if (this.get(id) === undefined) return undefined
    let handle: FileHandle
    try {
      handle = await open(this.contentPath(id), 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    return handle.createReadStream()
  }

  /** Close every open content writer (backend shutdown). */
  async closeAll(): Promise<void> {
    await Promise.allSettled([...this.writers].map((w) => w.close()))
  }
}
