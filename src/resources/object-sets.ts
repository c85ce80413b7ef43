/** `objectSets`: PID patterns, PID lists and Resource Index queries (spec §3.7, §4.4). */
import type { ObjectSetRecord, ObjectSetType } from '../backend/types.js'
import type { Call, Operation, Reply } from './operation.js'
import type { Links } from './links.js'
import type { EntityBody, Fields } from './representation.js'
import { unwrap, trimmedString, checkBodyId, pathId } from './input.js'
import type { Input } from './input.js'
import { badRequest, notFound, toHttpError } from './errors.js'

const SET_TYPES: readonly string[] = ['pidPattern', 'pidList', 'query']
const MAX_NAME = 256
const MAX_TYPE = 32
const MAX_DATA = 32672

export function objectSetFields(set: ObjectSetRecord, links: Links): Fields {
  return { data: set.data, name: set.name, type: set.type, uri: links.entity('objectSets', set.id) }
}

function body(set: ObjectSetRecord, links: Links): EntityBody {
  return { kind: 'entity', root: 'objectSet', fields: objectSetFields(set, links) }
}

interface SetFields { name?: string; type?: string; data?: string }

/** Trimmed given fields (blank = not given), each checked on its own. */
function givenFields(input: Input): SetFields {
  const fields: SetFields = {}
  const name = trimmedString(input, 'name')
  const type = trimmedString(input, 'type')
  const data = trimmedString(input, 'data')
  if (name !== undefined) fields.name = name
  if (type !== undefined) fields.type = type
  if (data !== undefined) fields.data = data
  return fields
}

/** Validate a complete set (spec §4.4); returns it typed. */
function validateSet(fields: SetFields): Omit<ObjectSetRecord, 'id'> {
  const { name, type, data } = fields
  if (name === undefined || name.length > MAX_NAME) throw badRequest('Field "name" is required: 1 to 256 characters.')
  if (type === undefined || type.length > MAX_TYPE || !SET_TYPES.includes(type)) {
    throw badRequest('Field "type" must be one of pidPattern, pidList or query.')
  }
  if (data === undefined || data.length > MAX_DATA) throw badRequest('Field "data" is required: 1 to 32672 characters.')
  if (type === 'query') validateQuery(data)
  return { name, type: type as ObjectSetType, data }
}

function validateQuery(data: string): void {
  let query: unknown
  try {
    query = JSON.parse(data)
  } catch {
    query = undefined
  }
  if (typeof query !== 'object' || query === null || Array.isArray(query)) {
    throw badRequest('A query set\'s "data" must be a JSON object: {"queryType":"iTQL"|"SPARQL","queryText":"…"}.')
  }
  const { queryType, queryText } = query as Record<string, unknown>
  if (queryType !== 'iTQL' && queryType !== 'SPARQL') throw badRequest('A query set\'s "queryType" must be iTQL or SPARQL.')
  if (typeof queryText !== 'string' || queryText.trim() === '') throw badRequest('A query set\'s "queryText" must not be blank.')
}

export const listObjectSets: Operation = {
  produces: 'objectsets',
  async run({ links, services }: Call): Promise<Reply> {
    const sets = await services.backend.listObjectSets()
    return { status: 200, body: { kind: 'list', plural: 'objectSets', singular: 'objectSet', items: sets.map((s) => objectSetFields(s, links)) } }
  }
}

export const createObjectSet: Operation = {
  produces: 'objectset',
  consumes: 'objectset',
  async run({ body: raw, links, services }: Call): Promise<Reply> {
    const input = unwrap(raw, 'objectSet')
    checkBodyId(input, undefined)
    const set = validateSet(givenFields(input))
    try {
      const created = body(await services.backend.createObjectSet(set), links)
      return { status: 201, body: created, location: created.fields.uri as string }
    } catch (err) {
      throw toHttpError(err)
    }
  }
}

export const getObjectSet: Operation = {
  produces: 'objectset',
  async run({ params, links, services }: Call): Promise<Reply> {
    const set = await services.backend.getObjectSet(pathId(params[0]!))
    if (set === undefined) throw notFound('This object set')
    return { status: 200, body: body(set, links) }
  }
}

export const updateObjectSet: Operation = {
  produces: 'objectset',
  consumes: 'objectset',
  async run({ params, body: raw, links, services }: Call): Promise<Reply> {
    const id = pathId(params[0]!)
    const current = await services.backend.getObjectSet(id)
    if (current === undefined) throw notFound('This object set')
    const input = unwrap(raw, 'objectSet')
    checkBodyId(input, id)
    const given = givenFields(input)
    validateSet({ ...current, ...given })
    try {
      return { status: 200, body: body(await services.backend.updateObjectSet(id, given as Partial<ObjectSetRecord>), links) }
    } catch (err) {
      throw toHttpError(err)
    }
  }
}

export const deleteObjectSet: Operation = {
  async run({ params, services }: Call): Promise<Reply> {
    try {
      await services.backend.deleteObjectSet(pathId(params[0]!))
    } catch (err) {
      throw toHttpError(err)
    }
    return { status: 204 }
  }
}
