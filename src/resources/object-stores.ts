/** `objectStores`: Fedora repositories, DuraCloud spaces and directories (spec §3.8, §4.5). */
import type { ObjectStoreRecord, ObjectStoreType } from '../backend/types.js'
import type { Call, Operation, Reply } from './operation.js'
import type { Links } from './links.js'
import type { EntityBody, Fields } from './representation.js'
import { unwrap, trimmedString, checkBodyId, pathId } from './input.js'
import { badRequest, notFound, toHttpError } from './errors.js'
import { ensureStoreDirectory } from './store-roots.js'

const MAX_NAME = 256
const MAX_DATA = 1024
const REQUIRED: Record<ObjectStoreType, readonly string[]> = {
  fedora: ['url', 'username', 'password'],
  duracloud: ['url', 'username', 'password', 'providerId', 'space'],
  filesystem: ['path']
}

/** The stored data with any `password` member removed [D4]. */
export function redactStoreData(data: string): string {
  if (!data.includes('"password"')) return data
  try {
    const parsed = JSON.parse(data) as Record<string, unknown>
    if (typeof parsed !== 'object' || parsed === null || !Object.hasOwn(parsed, 'password')) return data
    delete parsed.password
    return JSON.stringify(parsed)
  } catch {
    return data
  }
}

export function objectStoreFields(store: ObjectStoreRecord, links: Links): Fields {
  return { data: redactStoreData(store.data), name: store.name, type: store.type, uri: links.entity('objectStores', store.id) }
}

function body(store: ObjectStoreRecord, links: Links): EntityBody {
  return { kind: 'entity', root: 'objectStore', fields: objectStoreFields(store, links) }
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text)
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== ''
  } catch {
    return false
  }
}

/**
 * Parse and check store data (spec §4.5). Member numbers/booleans become
 * strings [D22]; unknown members are kept. Returns the text to store and the
 * members.
 */
export function validateStoreData(type: ObjectStoreType, text: string): { text: string; members: Record<string, unknown> } {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    parsed = undefined
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw badRequest('Field "data" must be a JSON object, e.g. {"path":"/srv/backup"}.')
  }
  const members = parsed as Record<string, unknown>
  let coerced = false
  for (const [key, value] of Object.entries(members)) {
    if (typeof value === 'number' || typeof value === 'boolean') {
      members[key] = String(value)
      coerced = true
    }
  }
  for (const key of REQUIRED[type]) {
    const value = members[key]
    if (typeof value !== 'string' || value.trim() === '') {
      throw badRequest(`A ${type} store needs data member "${key}" (${REQUIRED[type].join(', ')} are required).`)
    }
  }
  if (type !== 'filesystem' && !isHttpUrl((members.url as string).trim())) {
    throw badRequest('Store data member "url" must be an absolute http or https URL.')
  }
  return { text: coerced ? JSON.stringify(members) : text, members }
}

export const listObjectStores: Operation = {
  produces: 'objectstores',
  async run({ links, services }: Call): Promise<Reply> {
    const stores = await services.backend.listObjectStores()
    return { status: 200, body: { kind: 'list', plural: 'objectStores', singular: 'objectStore', items: stores.map((s) => objectStoreFields(s, links)) } }
  }
}

export const createObjectStore: Operation = {
  produces: 'objectstore',
  consumes: 'objectstore',
  async run({ body: raw, links, services }: Call): Promise<Reply> {
    const input = unwrap(raw, 'objectStore')
    checkBodyId(input, undefined)
    const name = trimmedString(input, 'name')
    if (name === undefined || name.length > MAX_NAME) throw badRequest('Field "name" is required: 1 to 256 characters.')
    const type = trimmedString(input, 'type')
    if (type !== 'fedora' && type !== 'duracloud' && type !== 'filesystem') {
      throw badRequest('Field "type" must be one of fedora, duracloud or filesystem.')
    }
    const dataText = trimmedString(input, 'data')
    if (dataText === undefined || dataText.length > MAX_DATA) throw badRequest('Field "data" is required: a JSON object of at most 1024 characters.')
    const data = validateStoreData(type, dataText)
    const undo = type === 'filesystem'
      ? await ensureStoreDirectory((data.members.path as string).trim(), services.storeRoots)
      : async () => {}
    try {
      const created = body(await services.backend.createObjectStore({ name, type, data: data.text }), links)
      return { status: 201, body: created, location: created.fields.uri as string }
    } catch (err) {
      await undo()
      throw toHttpError(err)
    }
  }
}

export const getObjectStore: Operation = {
  produces: 'objectstore',
  async run({ params, links, services }: Call): Promise<Reply> {
    const store = await services.backend.getObjectStore(pathId(params[0]!))
    if (store === undefined) throw notFound('This object store')
    return { status: 200, body: body(store, links) }
  }
}

export const deleteObjectStore: Operation = {
  async run({ params, services }: Call): Promise<Reply> {
    try {
      await services.backend.deleteObjectStore(pathId(params[0]!))
    } catch (err) {
      throw toHttpError(err)
    }
    return { status: 204 }
  }
}
