/**
 * The object-store connector contract: what the task engine needs from a
 * place that holds Fedora objects (CloudSync spec §5.7).
 *
 * The engine never looks at store records or paths itself; it asks
 * {@link connectorFor} for a connector and speaks only this interface, so
 * Fedora and DuraCloud connectors slot in without touching the engine.
 */
import type { Readable } from 'node:stream'
import type { ObjectStoreRecord } from '../types.js'
import type { FoxmlObject } from './foxml.js'
import { isHostAllowed, OUTBOUND_HOSTS_ENV } from '../../resources/outbound.js'
import type { OutboundPolicy } from '../../resources/outbound.js'
import { duracloudConnector } from './duracloud.js'
import { fedoraConnector } from './fedora.js'
import { filesystemConnector } from './filesystem.js'

// The connectors themselves, for hosts and custom engines that make their own.
export { duracloudConnector } from './duracloud.js'
export type { DuracloudConnectorOptions } from './duracloud.js'
export { fedoraConnector } from './fedora.js'
export type { FedoraConnectorOptions } from './fedora.js'
export { filesystemConnector } from './filesystem.js'
export type { FilesystemConnectorOptions } from './filesystem.js'

/** An object set, parsed (spec §4.4). */
export type ObjectSetSpec =
  | { type: 'pidPattern'; pattern: string }
  | { type: 'pidList'; pids: string[] }
  | { type: 'query'; queryType: 'iTQL' | 'SPARQL'; queryText: string }

/** What writing an object did. */
export type WriteOutcome = 'new' | 'replaced' | 'skipped'

/**
 * Supplies the content of one datastream version while an object is written.
 * Rejects when the content cannot be had (the write then fails and leaves the
 * destination as it was).
 */
export type ContentSource = (dsId: string, versionId: string) => Promise<Readable>

export interface WriteOptions {
  /** Replace an object that already exists (otherwise skip it). */
  overwrite: boolean
}

export interface ObjectStoreConnector {
  /** A short human description for log lines, e.g. `filesystem store /srv/x`. */
  readonly description: string
  /** Whether the object exists. Rejects on store errors (never "absent" for an error). */
  exists(pid: string): Promise<boolean>
  /** The parsed object, or undefined when it does not exist. Rejects when it exists but cannot be read. */
  readObject(pid: string): Promise<FoxmlObject | undefined>
  /** One datastream version's content, or undefined when the store has none for it. */
  readContent(pid: string, dsId: string, versionId: string): Promise<Readable | undefined>
  /**
   * Write `obj` with the content of every version of every `M` datastream
   * (taken from `contents`), content first and the object last. Existing and
   * not overwriting → `'skipped'` without calling `contents`. The connector
   * records where it put each managed version (its content location). On
   * failure nothing that existed before is lost.
   */
  writeObject(obj: FoxmlObject, contents: ContentSource, options: WriteOptions): Promise<WriteOutcome>
  /**
   * The PIDs of `set` in this store, streamed (memory does not grow with the
   * number of objects) and stopping as soon as `signal` aborts. Pattern sets
   * yield only PIDs passing the syntax check (spec §5.6). Rejects for sets
   * the store cannot evaluate (e.g. queries outside Fedora).
   */
  enumerate(set: ObjectSetSpec, signal: AbortSignal): AsyncIterable<string>
}

/** Options for connectors, given to the task engine as `storeOptions`. */
export interface ConnectorOptions {
  /**
   * Temporary files older than this (ms) found while enumerating a filesystem
   * store are leftovers of an interrupted write and are removed. Default 1 hour.
   */
  staleTempMs?: number
  /**
   * Flush written files and directories to stable storage (fsync), so that
   * copies survive a power loss. Default false: a killed server never leaves
   * a partial object either way; flushing makes copies much slower.
   */
  durable?: boolean
  /**
   * What remote stores (Fedora, DuraCloud) may contact: the same host
   * allow-list as the DuraCloud look-ups (`CLOUDSYNC_OUTBOUND_HOSTS`). A store
   * whose URL is not allowed fails its run with a message naming the host.
   * Default: any host.
   */
  outbound?: OutboundPolicy
  /** The run's cancel signal: remote stores stop waiting (retries, transfers) when it aborts. */
  signal?: AbortSignal
}

/** A store that this server cannot use; the run fails with its message. */
export class UnsupportedStoreError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UnsupportedStoreError'
  }
}

/**
 * The connector for a stored object-store record. Throws
 * {@link UnsupportedStoreError} for store types this server does not know,
 * and a plain `Error` for unusable store data or a host the outbound policy
 * does not allow; a task run turns either into its `ERROR:` line.
 *
 * @example
 * const store = connectorFor(await backend.getObjectStore(2), {})
 * for await (const pid of store.enumerate({ type: 'pidPattern', pattern: '*' }, signal)) console.log(pid)
 */
export function connectorFor(record: ObjectStoreRecord, options: ConnectorOptions = {}): ObjectStoreConnector {
  switch (record.type) {
    case 'filesystem': {
      const path = new StoreData(record).required('path')
      return filesystemConnector({ path, staleTempMs: options.staleTempMs, durable: options.durable })
    }
    case 'fedora': {
      const data = new StoreData(record)
      return remote(record, () => fedoraConnector({
        url: data.allowedUrl(options.outbound),
        username: data.required('username'),
        password: data.required('password', false),
        ...(options.outbound === undefined ? {} : { outbound: options.outbound }),
      }))
    }
    case 'duracloud': {
      const data = new StoreData(record)
      return remote(record, () => duracloudConnector({
        url: data.allowedUrl(options.outbound),
        username: data.required('username'),
        password: data.required('password', false),
        providerId: data.required('providerId'),
        space: data.required('space'),
        prefix: data.optional('prefix'),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      }))
    }
    default:
      throw new UnsupportedStoreError(`Object store "${String(record.name)}" has the unknown type "${String(record.type)}".`)
  }
}

/** A remote connector; its option errors name the store, so the run's ERROR line says which to fix. */
function remote(record: ObjectStoreRecord, create: () => ObjectStoreConnector): ObjectStoreConnector {
  try {
    return create()
  } catch (err) {
    if (!(err instanceof TypeError)) throw err
    throw new Error(`Object store "${record.name}" has unusable data (${err.message.replace(/^\w+: /, '')}); recreate the store.`, { cause: err })
  }
}

/** A store record's data JSON, parsed once; its errors name the store and say how to fix it. */
class StoreData {
  private readonly members: Record<string, unknown>

  constructor(private readonly record: ObjectStoreRecord) {
    let data: unknown
    try {
      data = JSON.parse(record.data)
    } catch {
      throw new Error(`Object store "${record.name}" has data that is not valid JSON; recreate the store.`)
    }
    this.members = typeof data === 'object' && data !== null && !Array.isArray(data) ? (data as Record<string, unknown>) : {}
  }

  /** A string member, `''` when absent or not a scalar (numbers/booleans coerced [D22]). */
  optional(name: string): string {
    if (!Object.hasOwn(this.members, name)) return ''
    const value = this.members[name]
    return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? String(value) : ''
  }

  /** A required member; `trim` off for secrets, whose spaces are part of them. */
  required(name: string, trim = true): string {
    const text = this.optional(name)
    if (text.trim() === '') throw new Error(`Object store "${this.record.name}" has no "${name}" in its data; recreate the store.`)
    return trim ? text.trim() : text
  }

  /** The `url` member, checked against the outbound host allow-list. */
  allowedUrl(policy: OutboundPolicy | undefined): string {
    const url = this.required('url')
    let parsed: URL | undefined
    try {
      parsed = new URL(url)
    } catch {
      parsed = undefined
    }
    if (parsed !== undefined && policy !== undefined && !isHostAllowed(parsed, policy)) {
      throw new Error(`Object store "${this.record.name}" is at ${parsed.hostname}, which this server may not contact; ask the administrator to add it to ${OUTBOUND_HOSTS_ENV}.`)
    }
    return url
  }
}
