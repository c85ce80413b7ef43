/**
 * The CloudSync entities as a client sees them (spec §3). Field names and
 * types follow the JSON representations; a field marked optional is absent
 * when it has no value (the server never sends `null`).
 *
 * Entities are identified only by `uri`: pass `entity.uri` (or the entity
 * itself) to the client's get/update/delete methods.
 */

/** Service info (spec §3.3). */
export interface ServiceInfo {
  /** Opaque build timestamp, e.g. `2012-11-05 16:20:11 UTC+0000`. */
  buildDate: string
  currentUserUri: string
  /** `false` until the first administrator has been created. */
  initialized: boolean
  objectSetsUri: string
  objectStoresUri: string
  providerAccountsUri: string
  spacesUri: string
  taskLogsUri: string
  tasksUri: string
  usersUri: string
  /** Implementation version, e.g. `"1.1.1"`. */
  version: string
}

/** Body of the first-run initialization (spec §3.4). */
export interface ServiceInit {
  initialAdminUsername: string
  initialAdminPassword: string
}

/** A boolean as the server accepts it on input: JSON boolean or `"true"`/`"false"`. */
export type BooleanInput = boolean | 'true' | 'false'

/** A user (spec §3.5). Passwords are never returned. */
export interface User {
  admin: boolean
  enabled: boolean
  name: string
  uri: string
}

/** Fields of a new user (POST `users`, admins only). */
export interface NewUser {
  name: string
  password: string
  admin: BooleanInput
  enabled: BooleanInput
}

/** Fields to change on a user (PATCH); absent fields keep their value. */
export interface UserChanges {
  name?: string
  password?: string
  admin?: BooleanInput
  enabled?: BooleanInput
}

export type TaskState = 'Idle' | 'Starting' | 'Running' | 'Pausing' | 'Paused' | 'Resuming' | 'Canceling'
export type TaskType = 'list' | 'copy'

/**
 * Type-specific task or store data. The wire format is a string holding JSON
 * text; the Node client also accepts an object and serializes it.
 */
export type DataInput = string | Readonly<Record<string, unknown>>

/** A task (spec §3.6). `data` is JSON text, returned exactly as submitted. */
export interface Task {
  /** Present only while the task has an active log. */
  activeLogUri?: string
  data: string
  name: string
  /** Opaque; present only when set. */
  schedule?: string
  state: TaskState
  type: TaskType
  uri: string
}

/** Fields of a new task (POST `tasks`). `state: 'Starting'` runs it at once. */
export interface NewTask {
  name: string
  type: TaskType
  state: 'Idle' | 'Starting'
  /** `list`: `{setUri, storeUri}`; `copy`: see spec §4.6. */
  data: DataInput
  schedule?: string
}

/** Fields to change on a task (PATCH). While not `Idle`, only `state` may change. */
export interface TaskChanges {
  name?: string
  type?: TaskType
  state?: TaskState
  data?: DataInput
  schedule?: string
}

export type ObjectSetType = 'pidPattern' | 'pidList' | 'query'

/** An object set (spec §3.7). */
export interface ObjectSet {
  /** Pattern text, whitespace-separated PIDs, or (for `query`) JSON text. */
  data: string
  name: string
  type: ObjectSetType
  uri: string
}

/** Fields of a new object set (POST `objectSets`). */
export interface NewObjectSet {
  name: string
  type: ObjectSetType
  /** A string; for `query` sets also an object `{queryType, queryText}`. */
  data: DataInput
}

/** Fields to change on an object set (PATCH). */
export interface ObjectSetChanges {
  name?: string
  type?: ObjectSetType
  data?: DataInput
}

export type ObjectStoreType = 'fedora' | 'duracloud' | 'filesystem'

/** An object store (spec §3.8). `data` is JSON object text without any `password`. */
export interface ObjectStore {
  data: string
  name: string
  type: ObjectStoreType
  uri: string
}

/** Fields of a new object store (POST `objectStores`). Stores cannot be updated. */
export interface NewObjectStore {
  name: string
  type: ObjectStoreType
  /** `fedora`: `{url, username, password}`; `duracloud`: `{url, username, password, providerId, space, prefix?, providerName?}`; `filesystem`: `{path}`. */
  data: DataInput
}

export type ResultType = 'Incomplete' | 'Succeeded' | 'Failed' | 'Canceled'

/** One run of a task (spec §3.9). Read-only. */
export interface TaskLog {
  /** `text/plain` content; never suffixed. */
  contentUri: string
  /** xs:dateTime; present once the run has finished. */
  finishDate?: string
  resultType: ResultType
  /** xs:dateTime. */
  startDate: string
  taskUri: string
  uri: string
}

/** A DuraCloud storage-provider account (spec §3.10). */
export interface ProviderAccount {
  /** DuraCloud store id, e.g. `"0"`; always a string. */
  id: string
  primary: boolean
  /** Storage provider type, e.g. `AMAZON_S3`. */
  type: string
}

/** A DuraCloud space (spec §3.11). */
export interface Space {
  id: string
}

/** An RFC 9457 problem document, as every CloudSync error response carries (spec §1.4). */
export interface ProblemDocument {
  type: string
  title: string
  status: number
  /** One human-readable sentence; show it, do not parse it. */
  detail: string
  instance: string
}
