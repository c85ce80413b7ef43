/**
 * Object sets as the task runners see them (CloudSync spec §4.4, §5.6):
 * parse a stored set record and enumerate it in a store.
 */
import type { ObjectSetRecord } from '../types.js'
import { tokenizePidList } from '../stores/pid.js'
import type { ObjectSetSpec, ObjectStoreConnector } from '../stores/types.js'

/**
 * The parsed form of a stored set; throws an `Error` whose message suits an
 * `ERROR:` log line when the stored data is unusable.
 *
 * @example
 * parseObjectSet({ id: 1, name: 'All Objects', type: 'pidPattern', data: '*' })
 * // { type: 'pidPattern', pattern: '*' }
 */
export function parseObjectSet(record: ObjectSetRecord): ObjectSetSpec {
  switch (record.type) {
    case 'pidPattern':
      return { type: 'pidPattern', pattern: record.data.trim() }
    case 'pidList':
      return { type: 'pidList', pids: tokenizePidList(record.data) }
    case 'query': {
      let json: unknown
      try {
        json = JSON.parse(record.data)
      } catch {
        json = undefined
      }
      const q = typeof json === 'object' && json !== null ? (json as Record<string, unknown>) : {}
      const queryType = q.queryType
      const queryText = q.queryText
      if ((queryType !== 'iTQL' && queryType !== 'SPARQL') || typeof queryText !== 'string' || queryText.trim() === '') {
        throw new Error(`Object set "${record.name}" does not hold a valid query ({"queryType": "iTQL" or "SPARQL", "queryText": "…"}); fix the set.`)
      }
      return { type: 'query', queryType, queryText }
    }
    default:
      throw new Error(`Object set "${String(record.name)}" has the unknown type "${String(record.type)}"; fix the set.`)
  }
}

/**
 * The PIDs of a stored set in `store`, streamed; stops when `signal` aborts.
 * Rejects (on first iteration) when the set cannot be evaluated there, e.g.
 * `Query object sets can only be evaluated by a Fedora object store`.
 *
 * @example
 * for await (const pid of enumerateObjectSet(store, setRecord, abort.signal)) await log.line(pid)
 */
export async function* enumerateObjectSet(
  store: ObjectStoreConnector,
  record: ObjectSetRecord,
  signal: AbortSignal,
): AsyncGenerator<string> {
  const spec = parseObjectSet(record)
  for await (const pid of store.enumerate(spec, signal)) {
    if (signal.aborted) return
    yield pid
  }
}
