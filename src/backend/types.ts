/**
 * The backend contract: everything a CloudSync server stores.
 *
 * A custom CloudSync server implements {@link Backend} (its own database,
 * its own files) and reuses the toolkit's resources and middleware unchanged.
 * The backend knows nothing of HTTP: it speaks in records, plain values and
 * {@link BackendError} codes, and the resources map those to statuses.
 *
 * Rules every implementation must keep (spec §4, §5.9):
 * - each collection has its own integer id sequence starting at 1; ids are
 *   never reused, also after deletes;
 * - names are unique per collection and case-sensitive;
 * - dependency ("in use") checks and the write they guard happen atomically;
 * - task state changes can be conditional (compare-and-set) on the state the
 *   caller last saw;
 * - on first open, object set 1 is `All Objects` / `pidPattern` / `*`.
 *
 * All methods are async so that a networked database fits the same shape.
 */
import type { SessionStore } from '../middleware/context.js'

export type TaskState = 'Idle' | 'Starting' | 'Running' | 'Pausing' | 'Paused' | 'Resuming' | 'Canceling'
export const TASK_STATES: readonly TaskState[] = ['Idle', 'Starting', 'Running', 'Pausing', 'Paused', 'Resuming', 'Canceling']

export type TaskType = 'list' | 'copy'
export type ObjectSetType = 'pidPattern' | 'pidList' | 'query'
export type ObjectStoreType = 'fedora' | 'duracloud' | 'filesystem'
export type ResultType = 'Incomplete' | 'Succeeded' | 'Failed' | 'Canceled'

export interface UserRecord {
  id: number
  name: string
  admin: boolean
  enabled: boolean
}

export interface NewUser {
  name: string
  /** Plaintext; the backend hashes it (never stores or returns it). */
  password: string
  admin: boolean
  enabled: boolean
}

export interface UserChanges {
  name?: string
  password?: string
  admin?: boolean
  enabled?: boolean
}

export interface ObjectSetRecord {
  id: number
  name: string
  type: ObjectSetType
  data: string
}

export interface ObjectStoreRecord {
  id: number
  name: string
  type: ObjectStoreType
  /** JSON object text exactly as stored (with secrets, decrypted). Redaction is the resources' job. */
  data: string
}

export interface TaskRecord {
  id: number
  name: string
  type: TaskType
  state: TaskState
  schedule?: string
  data: string
  activeLogId?: number
}

/** The set and stores a task uses (spec §4.9). Recorded with every task write. */
export interface TaskDependencies {
  setIds: number[]
  storeIds: number[]
}

export interface NewTask {
  name: string
  type: TaskType
  state: 'Idle' | 'Starting'
  schedule?: string
  data: string
  dependencies: TaskDependencies
}

export interface TaskChanges {
  name?: string
  type?: TaskType
  state?: TaskState
  schedule?: string
  data?: string
  /** `null` clears the active log. */
  activeLogId?: number | null
  /** Replaces the recorded dependencies when given. */
  dependencies?: TaskDependencies
}

export interface TaskLogRecord {
  id: number
  taskId: number
  resultType: ResultType
  /** Epoch milliseconds. */
  startDate: number
  /** Epoch milliseconds; absent while `Incomplete`. */
  finishDate?: number
}

/** Codes a backend reports; resources map them to HTTP statuses. */
export type BackendErrorCode =
  | 'not_found' // the entity does not exist
  | 'name_taken' // unique name violated
  | 'in_use' // referenced by a task (sets, stores) or has logs (tasks)
  | 'active' // task not Idle, or log is the active log of a non-Idle task
  | 'state_changed' // conditional update lost a race
  | 'already_initialized'

export class BackendError extends Error {
  readonly code: BackendErrorCode
  constructor(code: BackendErrorCode, message: string) {
    super(message)
    this.name = 'BackendError'
    this.code = code
  }
}

/** Appends to one task log's content; lines become readable as written. */
export interface TaskLogWriter {
  write(text: string): Promise<void>
  close(): Promise<void>
}

export interface Backend {
  // ---- service (§4.2) ----
  isInitialized(): Promise<boolean>
  /** Atomically create the first admin and mark the service initialized. Throws `already_initialized`. */
  initialize(admin: { name: string; password: string }): Promise<UserRecord>

  // ---- users (§4.3) ----
  /** Every user, by id. The result may be shared and frozen: never modify it. */
  listUsers(): Promise<readonly UserRecord[]>
  getUser(id: number): Promise<UserRecord | undefined>
  /** The user if `name` exists and `password` matches (enabled or not); undefined otherwise. Takes the same time for unknown names. */
  verifyPassword(name: string, password: string): Promise<UserRecord | undefined>
  /** Throws `name_taken`. */
  createUser(user: NewUser): Promise<UserRecord>
  /** Throws `not_found`, `name_taken`. A given password is re-hashed. */
  updateUser(id: number, changes: UserChanges): Promise<UserRecord>
  /** Throws `not_found`. Also ends the user's sessions. */
  deleteUser(id: number): Promise<void>

  // ---- sessions (§6.2) ----
  readonly sessions: SessionStore

  // ---- object sets (§4.4) ----
  listObjectSets(): Promise<ObjectSetRecord[]>
  getObjectSet(id: number): Promise<ObjectSetRecord | undefined>
  /** Throws `name_taken`. */
  createObjectSet(set: Omit<ObjectSetRecord, 'id'>): Promise<ObjectSetRecord>
  /** Throws `not_found`, `name_taken`. */
  updateObjectSet(id: number, changes: Partial<Omit<ObjectSetRecord, 'id'>>): Promise<ObjectSetRecord>
  /** Throws `not_found`, `in_use`. */
  deleteObjectSet(id: number): Promise<void>

  // ---- object stores (§4.5) ----
  listObjectStores(): Promise<ObjectStoreRecord[]>
  getObjectStore(id: number): Promise<ObjectStoreRecord | undefined>
  /** Throws `name_taken`. */
  createObjectStore(store: Omit<ObjectStoreRecord, 'id'>): Promise<ObjectStoreRecord>
  /** Throws `not_found`, `in_use`. */
  deleteObjectStore(id: number): Promise<void>

  // ---- tasks (§4.6) ----
  listTasks(): Promise<TaskRecord[]>
  getTask(id: number): Promise<TaskRecord | undefined>
  /** Throws `name_taken`; also when a dependency vanished meanwhile: `not_found`. */
  createTask(task: NewTask): Promise<TaskRecord>
  /**
   * Apply `changes`; when `ifState` is given, only if the task is still in
   * that state (else throws `state_changed`). Throws `not_found`, `name_taken`.
   */
  updateTask(id: number, changes: TaskChanges, ifState?: TaskState): Promise<TaskRecord>
  /** Throws `not_found`, `active` (not Idle), `in_use` (has logs). */
  deleteTask(id: number): Promise<void>

  // ---- task logs (§4.7) ----
  /** Ordered: unfinished first, then finishDate descending, ties by id descending. */
  listTaskLogs(): Promise<TaskLogRecord[]>
  getTaskLog(id: number): Promise<TaskLogRecord | undefined>
  /** A new `Incomplete` log with empty content. Throws `not_found` for an unknown task. */
  createTaskLog(taskId: number, startDate: number): Promise<TaskLogRecord>
  /** Set the final result and finish date. Throws `not_found`. */
  finishTaskLog(id: number, resultType: Exclude<ResultType, 'Incomplete'>, finishDate: number): Promise<TaskLogRecord>
  /** Throws `not_found`, `active`. Removes the content too. */
  deleteTaskLog(id: number): Promise<void>
  /** Open the content for appending. Throws `not_found`. */
  openTaskLogContent(id: number): Promise<TaskLogWriter>
  /** The content's path-free reader: a stream of UTF-8 bytes, or undefined when absent. */
  readTaskLogContent(id: number): Promise<NodeJS.ReadableStream | undefined>

  /** Release files and connections. Idempotent. */
  close(): Promise<void>
}
