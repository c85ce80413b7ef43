/**
 * A task's type-specific `data` (CloudSync spec §4.6): parsing, reference
 * resolution (§4.1) and the dependencies a task records (§4.9).
 *
 * Shared by the task runners and by the HTTP layer, which reuses it to
 * validate task bodies: every failure carries a sentence fit for a 400
 * detail.
 */
import type { Backend, TaskDependencies } from '../types.js'

export interface ListTaskData {
  type: 'list'
  setId: number
  storeId: number
}

export interface CopyTaskData {
  type: 'copy'
  setId: number
  queryStoreId: number
  sourceStoreId: number
  destStoreId: number
  overwrite: boolean
  includeManaged: boolean
  copyExternal: boolean
  copyRedirect: boolean
}

export type TaskData = ListTaskData | CopyTaskData

export type TaskDataResult =
  | { ok: true; data: TaskData; dependencies: TaskDependencies }
  | { ok: false; message: string }

type Collection = 'objectSets' | 'objectStores'

const DECIMAL = /^[0-9]+$/

/**
 * The id named by a reference URI (absolute or relative): its last two path
 * segments must be `collection` and a decimal id, with any `.json`/`.xml`
 * suffix removed [D20]. Scheme, host and prefix are not checked. `undefined`
 * when the URI does not name an entity of `collection`.
 *
 * @example
 * resolveReference('http://example.org/cs/api/rest/objectSets/1.json', 'objectSets') // 1
 * resolveReference('objectStores/2', 'objectStores')                               // 2
 * resolveReference('objectStores/2', 'objectSets')                                 // undefined
 */
export function resolveReference(uri: unknown, collection: Collection): number | undefined {
  if (typeof uri !== 'string') return undefined
  let path = uri.trim()
  const hash = path.indexOf('#')
  if (hash !== -1) path = path.slice(0, hash)
  const query = path.indexOf('?')
  if (query !== -1) path = path.slice(0, query)
  const slash = path.lastIndexOf('/')
  if (slash <= 0) return undefined
  let id = path.slice(slash + 1)
  const before = path.lastIndexOf('/', slash - 1)
  if (path.slice(before + 1, slash) !== collection) return undefined
  if (id.endsWith('.json')) id = id.slice(0, -5)
  else if (id.endsWith('.xml')) id = id.slice(0, -4)
  if (!DECIMAL.test(id)) return undefined
  const n = Number(id)
  return Number.isSafeInteger(n) && n > 0 ? n : undefined
}

/**
 * Parse a copy flag: `"true"`/`"false"` (any case, trimmed) or a JSON
 * boolean [D22]; `undefined` for anything else.
 *
 * @example
 * parseFlag('true') // true
 * parseFlag(false)  // false
 * parseFlag('yes')  // undefined
 */
export function parseFlag(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value
  if (typeof value !== 'string') return undefined
  const text = value.trim().toLowerCase()
  return text === 'true' ? true : text === 'false' ? false : undefined
}

const REFERENCE_HINT: Record<Collection, string> = {
  objectSets: 'the URI of an object set, e.g. …/objectSets/1',
  objectStores: 'the URI of an object store, e.g. …/objectStores/2',
}

/**
 * Parse and check a task's `data` text for its `type` (`list` or `copy`).
 * Checks syntax only; see {@link checkTaskReferences} for existence.
 *
 * @example
 * const r = parseTaskData('list', '{"setUri":"objectSets/1","storeUri":"objectStores/2"}')
 * if (r.ok) r.data // { type: 'list', setId: 1, storeId: 2 }
 * else r.message   // a sentence for a 400 detail
 */
export function parseTaskData(type: string, text: string): TaskDataResult {
  if (type !== 'list' && type !== 'copy') {
    return { ok: false, message: 'The task type must be "list" or "copy".' }
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return { ok: false, message: 'The task data must be JSON object text, e.g. {"setUri": "…", "storeUri": "…"}.' }
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { ok: false, message: 'The task data must be a JSON object, e.g. {"setUri": "…", "storeUri": "…"}.' }
  }
  const members = json as Record<string, unknown>
  const problems: string[] = []
  const ref = (name: string, collection: Collection): number => {
    const value = Object.hasOwn(members, name) ? members[name] : undefined
    const id = resolveReference(value, collection)
    if (id === undefined) {
      problems.push(
        value === undefined || value === null || (typeof value === 'string' && value.trim() === '')
          ? `The task data member "${name}" is missing; give ${REFERENCE_HINT[collection]}.`
          : `The task data member "${name}" must be ${REFERENCE_HINT[collection]}.`,
      )
    }
    return id ?? 0
  }
  const flag = (name: string): boolean => {
    const value = Object.hasOwn(members, name) ? members[name] : undefined
    const parsed = parseFlag(value)
    if (parsed === undefined) {
      problems.push(
        value === undefined || value === null
          ? `The task data member "${name}" is missing; give "true" or "false".`
          : `The task data member "${name}" must be "true" or "false".`,
      )
    }
    return parsed ?? false
  }

  let data: TaskData
  if (type === 'list') {
    data = { type, setId: ref('setUri', 'objectSets'), storeId: ref('storeUri', 'objectStores') }
  } else {
    data = {
      type,
      setId: ref('setUri', 'objectSets'),
      queryStoreId: ref('queryStoreUri', 'objectStores'),
      sourceStoreId: ref('sourceStoreUri', 'objectStores'),
      destStoreId: ref('destStoreUri', 'objectStores'),
      overwrite: flag('overwrite'),
      includeManaged: flag('includeManaged'),
      copyExternal: flag('copyExternal'),
      copyRedirect: flag('copyRedirect'),
    }
  }
  if (problems.length > 0) return { ok: false, message: problems[0]! }
  return { ok: true, data, dependencies: taskDependencies(data) }
}

/**
 * The set and the distinct stores a task's data references.
 *
 * @example
 * taskDependencies({ type: 'list', setId: 1, storeId: 2 }) // { setIds: [1], storeIds: [2] }
 */
export function taskDependencies(data: TaskData): TaskDependencies {
  const stores = data.type === 'list' ? [data.storeId] : [data.queryStoreId, data.sourceStoreId, data.destStoreId]
  return { setIds: [data.setId], storeIds: [...new Set(stores)] }
}

/**
 * Check that every entity `data` references exists; a sentence for a 400
 * detail naming the first missing one, or `undefined` when all exist.
 *
 * @example
 * const problem = await checkTaskReferences(backend, parsed.data)
 * if (problem) return next(new HttpError(400, problem, { code: 'invalid_task_data' }))
 */
export async function checkTaskReferences(
  backend: Pick<Backend, 'getObjectSet' | 'getObjectStore'>,
  data: TaskData,
): Promise<string | undefined> {
  if ((await backend.getObjectSet(data.setId)) === undefined) {
    return `The task data member "setUri" names object set ${data.setId}, which does not exist; create it or pick another.`
  }
  const stores: Array<[string, number]> =
    data.type === 'list'
      ? [['storeUri', data.storeId]]
      : [
          ['queryStoreUri', data.queryStoreId],
          ['sourceStoreUri', data.sourceStoreId],
          ['destStoreUri', data.destStoreId],
        ]
  for (const [name, id] of stores) {
    if ((await backend.getObjectStore(id)) === undefined) {
      return `The task data member "${name}" names object store ${id}, which does not exist; create it or pick another.`
    }
  }
  return undefined
}
