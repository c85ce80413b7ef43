/**
 * Tasks and their dependencies (spec §4.6, §4.9, [D38]).
 *
 * Every write is one immediate transaction: the existence checks of the
 * set and stores a task depends on, the conditional (compare-and-set) state
 * check, the row write and the dependency rows commit together or not at all.
 */
import { BackendError } from '../types.js'
import type { NewTask, TaskChanges, TaskDependencies, TaskRecord, TaskState } from '../types.js'
import { isForeignKeyViolation, isId, isUniqueViolation } from './db.js'
import type { Database, Statement, Transaction } from './db.js'

interface TaskRow {
  id: number
  name: string
  type: TaskRecord['type']
  state: TaskState
  schedule: string | null
  data: string
  active_log_id: number | null
}

const COLUMNS = 'id, name, type, state, schedule, data, active_log_id'

function toRecord(row: TaskRow): TaskRecord {
  const record: TaskRecord = { id: row.id, name: row.name, type: row.type, state: row.state, data: row.data }
  // Absent, not undefined-valued: records compare and serialize cleanly.
  if (row.schedule !== null) record.schedule = row.schedule
  if (row.active_log_id !== null) record.activeLogId = row.active_log_id
  return record
}

function notFound(id: number): BackendError {
  return new BackendError('not_found', `Task ${id} does not exist.`)
}

function nameTaken(name: string): BackendError {
  return new BackendError('name_taken', `A task named "${name}" already exists.`)
}

/** Distinct ids; throws TypeError for anything that is not a list of ids. */
function idList(value: unknown, what: string): number[] {
  if (!Array.isArray(value)) throw new TypeError(`${what} must be an array of ids`)
  const ids = new Set<number>()
  for (const id of value) {
    if (!isId(id)) throw new TypeError(`${what} must hold positive integer ids`)
    ids.add(id)
  }
  return [...ids]
}

function checkDependencies(deps: unknown, what: string): TaskDependencies {
  if (typeof deps !== 'object' || deps === null) throw new TypeError(`${what} must be an object`)
  const d = deps as Partial<TaskDependencies>
  return { setIds: idList(d.setIds, `${what}.setIds`), storeIds: idList(d.storeIds, `${what}.storeIds`) }
}

/**
 * Task rows and their dependency rows. Used by {@link SqliteBackend}; not a public API.
 *
 * @example
 * const tasks = new TaskTable(db)
 * tasks.update(id, { state: 'Canceling' }, 'Running') // throws state_changed if it lost a race
 */
export class TaskTable {
  private readonly listStmt: Statement
  private readonly byIdStmt: Statement
  private readonly insertStmt: Statement
  private readonly updateStmt: Statement
  private readonly deleteStmt: Statement
  private readonly setExistsStmt: Statement
  private readonly storeExistsStmt: Statement
  private readonly logOfTaskStmt: Statement
  private readonly hasLogsStmt: Statement
  private readonly insertSetDepStmt: Statement
  private readonly insertStoreDepStmt: Statement
  private readonly clearSetDepsStmt: Statement
  private readonly clearStoreDepsStmt: Statement
  private readonly setDepsStmt: Statement
  private readonly storeDepsStmt: Statement
  private readonly createTx: Transaction<(task: NewTask, deps: TaskDependencies) => TaskRecord>
  private readonly updateTx: Transaction<(id: number, changes: TaskChanges, deps: TaskDependencies | undefined, ifState: TaskState | undefined) => TaskRecord>
  private readonly deleteTx: Transaction<(id: number) => void>

  constructor(db: Database) {
    this.listStmt = db.prepare(`SELECT ${COLUMNS} FROM tasks ORDER BY id`)
    this.byIdStmt = db.prepare(`SELECT ${COLUMNS} FROM tasks WHERE id = ?`)
    this.insertStmt = db.prepare('INSERT INTO tasks (name, type, state, schedule, data) VALUES (?, ?, ?, ?, ?)')
    this.updateStmt = db.prepare('UPDATE tasks SET name = ?, type = ?, state = ?, schedule = ?, data = ?, active_log_id = ? WHERE id = ?')
    this.deleteStmt = db.prepare('DELETE FROM tasks WHERE id = ?')
    this.setExistsStmt = db.prepare('SELECT 1 FROM object_sets WHERE id = ?')
    this.storeExistsStmt = db.prepare('SELECT 1 FROM object_stores WHERE id = ?')
    this.logOfTaskStmt = db.prepare('SELECT 1 FROM task_logs WHERE id = ? AND task_id = ?')
    this.hasLogsStmt = db.prepare('SELECT 1 FROM task_logs WHERE task_id = ? LIMIT 1')
    this.insertSetDepStmt = db.prepare('INSERT INTO task_set_deps (task_id, set_id) VALUES (?, ?)')
    this.insertStoreDepStmt = db.prepare('INSERT INTO task_store_deps (task_id, store_id) VALUES (?, ?)')
    this.clearSetDepsStmt = db.prepare('DELETE FROM task_set_deps WHERE task_id = ?')
    this.clearStoreDepsStmt = db.prepare('DELETE FROM task_store_deps WHERE task_id = ?')
    this.setDepsStmt = db.prepare('SELECT set_id FROM task_set_deps WHERE task_id = ? ORDER BY set_id')
    this.storeDepsStmt = db.prepare('SELECT store_id FROM task_store_deps WHERE task_id = ? ORDER BY store_id')

    this.createTx = db.transaction((task: NewTask, deps: TaskDependencies) => {
      this.requireDependencies(deps)
      let id: number
      try {
        id = Number(this.insertStmt.run(task.name, task.type, task.state, task.schedule || null, task.data).lastInsertRowid)
      } catch (err) {
        throw isUniqueViolation(err) ? nameTaken(task.name) : err
      }
      this.writeDependencies(id, deps)
      return toRecord({ id, name: task.name, type: task.type, state: task.state, schedule: task.schedule || null, data: task.data, active_log_id: null })
    })

    this.updateTx = db.transaction((id: number, changes: TaskChanges, deps: TaskDependencies | undefined, ifState: TaskState | undefined) => {
      const row = this.byIdStmt.get<TaskRow>(id)
      if (row === undefined) throw notFound(id)
      if (ifState !== undefined && row.state !== ifState) {
        throw new BackendError('state_changed', `Task ${id} is now ${row.state}, not ${ifState}.`)
      }
      const merged: TaskRow = {
        id,
        name: changes.name ?? row.name,
        type: changes.type ?? row.type,
        state: changes.state ?? row.state,
        schedule: changes.schedule === undefined ? row.schedule : changes.schedule || null,
        data: changes.data ?? row.data,
        active_log_id: changes.activeLogId === undefined ? row.active_log_id : changes.activeLogId
      }
      if (changes.activeLogId != null && this.logOfTaskStmt.get(changes.activeLogId, id) === undefined) {
        throw new BackendError('not_found', `Task log ${changes.activeLogId} does not exist or belongs to another task.`)
      }
      if (deps !== undefined) this.requireDependencies(deps)
      try {
        this.updateStmt.run(merged.name, merged.type, merged.state, merged.schedule, merged.data, merged.active_log_id, id)
      } catch (err) {
        throw isUniqueViolation(err) ? nameTaken(merged.name) : err
      }
      if (deps !== undefined) {
        this.clearSetDepsStmt.run(id)
        this.clearStoreDepsStmt.run(id)
        this.writeDependencies(id, deps)
      }
      return toRecord(merged)
    })

    this.deleteTx = db.transaction((id: number) => {
      const row = this.byIdStmt.get<TaskRow>(id)
      if (row === undefined) throw notFound(id)
      if (row.state !== 'Idle') throw new BackendError('active', `Task ${id} is ${row.state}; it can be deleted once it is Idle.`)
      if (this.hasLogsStmt.get(id) !== undefined) throw new BackendError('in_use', `Task ${id} still has task logs; delete them first.`)
      try {
        this.deleteStmt.run(id) // dependency rows go with it (ON DELETE CASCADE)
      } catch (err) {
        throw isForeignKeyViolation(err) ? new BackendError('in_use', `Task ${id} still has task logs; delete them first.`) : err
      }
    })
  }

  list(): TaskRecord[] {
    return this.listStmt.all<TaskRow>().map(toRecord)
  }

  get(id: number): TaskRecord | undefined {
    if (!isId(id)) return undefined
    const row = this.byIdStmt.get<TaskRow>(id)
    return row === undefined ? undefined : toRecord(row)
  }

  /** The recorded dependencies of a task, or undefined for an unknown task. */
  dependencies(id: number): TaskDependencies | undefined {
    if (this.get(id) === undefined) return undefined
    return {
      setIds: this.setDepsStmt.all<{ set_id: number }>(id).map((r) => r.set_id),
      storeIds: this.storeDepsStmt.all<{ store_id: number }>(id).map((r) => r.store_id)
    }
  }

  create(task: NewTask): TaskRecord {
    for (const field of ['name', 'type', 'state', 'data'] as const) {
      if (typeof task?.[field] !== 'string') throw new TypeError(`createTask: ${field} must be a string`)
    }
    if (task.schedule !== undefined && typeof task.schedule !== 'string') throw new TypeError('createTask: schedule must be a string')
    return this.createTx.immediate(task, checkDependencies(task.dependencies, 'createTask: dependencies'))
  }

  update(id: number, changes: TaskChanges, ifState?: TaskState): TaskRecord {
    if (!isId(id)) throw notFound(id)
    for (const field of ['name', 'type', 'state', 'schedule', 'data'] as const) {
      if (changes[field] !== undefined && typeof changes[field] !== 'string') throw new TypeError(`updateTask: ${field} must be a string`)
    }
    if (changes.activeLogId != null && !isId(changes.activeLogId)) throw new TypeError('updateTask: activeLogId must be a positive integer or null')
    const deps = changes.dependencies === undefined ? undefined : checkDependencies(changes.dependencies, 'updateTask: dependencies')
    return this.updateTx.immediate(id, changes, deps, ifState)
  }

  delete(id: number): void {
    if (!isId(id)) throw notFound(id)
    this.deleteTx.immediate(id)
  }

  /** Inside a transaction: every referenced set and store must still exist. */
  private requireDependencies(deps: TaskDependencies): void {
    for (const setId of deps.setIds) {
      if (this.setExistsStmt.get(setId) === undefined) throw new BackendError('not_found', `Object set ${setId} no longer exists.`)
    }
    for (const storeId of deps.storeIds) {
      if (this.storeExistsStmt.get(storeId) === undefined) throw new BackendError('not_found', `Object store ${storeId} no longer exists.`)
    }
  }

  private writeDependencies(id: number, deps: TaskDependencies): void {
    for (const setId of deps.setIds) this.insertSetDepStmt.run(id, setId)
    for (const storeId of deps.storeIds) this.insertStoreDepStmt.run(id, storeId)
  }
}
