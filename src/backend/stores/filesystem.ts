/**
 * The filesystem object-store connector (CloudSync spec §5.7.1).
 *
 * Objects are FOXML files in a two-level hashed tree (see
 * `filesystem-layout.ts`); managed content sits next to them, one file per
 * datastream version.
 *
 * - Enumeration is an async generator over `opendir`: memory stays flat in
 *   the number of objects, and it stops as soon as the run is canceled [D28].
 * - Writes are atomic per file and ordered content-first, object-last: every
 *   file is written to a temporary name, and only when all are complete are
 *   they renamed into place, the object file last. On failure only the
 *   temporaries are removed, never what existed before [D30].
 */
import { createWriteStream } from 'node:fs'
import { mkdir, open, opendir, readdir, readFile, rename, rm, stat, unlink, writeFile } from 'node:fs/promises'
import { isAbsolute, join, resolve } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { parseFoxml, serializeFoxml } from './foxml.js'
import type { FoxmlObject } from './foxml.js'
import {
  contentFileName,
  encodeName,
  isTempName,
  objectDir,
  objectFileName,
  parseFileName,
  tempName,
} from './filesystem-layout.js'
import { compilePidPattern, isValidPid } from './pid.js'
import type { ContentSource, ObjectSetSpec, ObjectStoreConnector, WriteOptions, WriteOutcome } from './types.js'

export interface FilesystemConnectorOptions {
  /** The store's base directory (`data.path`); must be absolute. */
  path: string
  /** Remove temporary files older than this (ms) when enumeration meets them. Default 1 hour. */
  staleTempMs?: number
}

const DEFAULT_STALE_TEMP_MS = 60 * 60 * 1000

/** Message used when a query set is run against a store that cannot evaluate it. */
export const QUERY_UNSUPPORTED = 'Query object sets can only be evaluated by a Fedora object store; use a pidPattern or pidList set with this store.'

/**
 * A connector for the filesystem store rooted at `options.path`.
 *
 * @example
 * const store = filesystemConnector({ path: '/srv/cloudsync/stores/backup' })
 * if (await store.exists('demo:1')) console.log(await store.readObject('demo:1'))
 */
export function filesystemConnector(options: FilesystemConnectorOptions): ObjectStoreConnector {
  if (typeof options?.path !== 'string' || !isAbsolute(options.path)) {
    throw new TypeError('filesystemConnector: option "path" must be an absolute directory path')
  }
  const staleTempMs = options.staleTempMs ?? DEFAULT_STALE_TEMP_MS
  if (typeof staleTempMs !== 'number' || !(staleTempMs >= 0)) {
    throw new TypeError('filesystemConnector: option "staleTempMs" must be a non-negative number of milliseconds')
  }
  return new FilesystemStore(resolve(options.path), staleTempMs)
}

class FilesystemStore implements ObjectStoreConnector {
  readonly description: string

  constructor(
    private readonly base: string,
    private readonly staleTempMs: number,
  ) {
    this.description = `filesystem store ${base}`
  }

  async exists(pid: string): Promise<boolean> {
    try {
      return (await stat(this.objectPath(pid))).isFile()
    } catch (err) {
      if (isMissing(err)) return false
      throw storeError(`Cannot check whether ${pid} exists in the ${this.description}`, err)
    }
  }

  async readObject(pid: string): Promise<FoxmlObject | undefined> {
    let text: string
    try {
      text = await readFile(this.objectPath(pid), 'utf8')
    } catch (err) {
      if (isMissing(err)) return undefined
      throw storeError(`Cannot read ${pid} from the ${this.description}`, err)
    }
    const obj = parseFoxml(text)
    if (obj === undefined) throw new Error(`The object file of ${pid} in the ${this.description} is not valid FOXML 1.1; repair or remove it.`)
    if (obj.pid !== pid) throw new Error(`The object file of ${pid} in the ${this.description} declares the PID ${obj.pid}; repair or remove it.`)
    return obj
  }

  async readContent(pid: string, dsId: string, versionId: string): Promise<Readable | undefined> {
    const path = join(objectDir(this.base, pid), contentFileName(pid, dsId, versionId))
    try {
      // Open first so that "absent" is known before a stream is handed out.
      const handle = await open(path, 'r')
      return handle.createReadStream()
    } catch (err) {
      if (isMissing(err)) return undefined
      throw storeError(`Cannot read ${pid} datastream ${dsId} version ${versionId} from the ${this.description}`, err)
    }
  }

  async writeObject(obj: FoxmlObject, contents: ContentSource, options: WriteOptions): Promise<WriteOutcome> {
    const pid = obj.pid
    const existed = await this.exists(pid)
    if (existed && !options.overwrite) return 'skipped'
    const dir = objectDir(this.base, pid)
    try {
      await mkdir(dir, { recursive: true })
    } catch (err) {
      throw storeError(`Cannot create the directory for ${pid} in the ${this.description}`, err)
    }

    const pending: Array<{ temp: string; final: string }> = []
    const written = new Set<string>()
    try {
      const stored = withInternalLocations(obj)
      for (const ds of obj.datastreams) {
        if (ds.controlGroup !== 'M') continue
        for (const v of ds.versions) {
          const name = contentFileName(pid, ds.id, v.id)
          const temp = join(dir, tempName(name))
          pending.push({ temp, final: join(dir, name) })
          written.add(name)
          const source = await contents(ds.id, v.id)
          await pipeline(source, createWriteStream(temp, { flags: 'wx', flush: true }))
        }
      }
      const name = objectFileName(pid)
      const temp = join(dir, tempName(name))
      pending.push({ temp, final: join(dir, name) })
      await writeFile(temp, serializeFoxml(stored), { flag: 'wx', flush: true })
      // Everything is on disk: move into place, the object file last.
      while (pending.length > 0) {
        const next = pending[0]!
        await rename(next.temp, next.final)
        pending.shift()
      }
    } catch (err) {
      await Promise.all(pending.map((p) => rm(p.temp, { force: true }).catch(() => undefined)))
      if (err instanceof Error && !isFsError(err)) throw err
      throw storeError(`Cannot write ${pid} to the ${this.description}`, err)
    }
    if (existed) await this.removeStaleContent(dir, pid, written)
    return existed ? 'replaced' : 'new'
  }

  async *enumerate(set: ObjectSetSpec, signal: AbortSignal): AsyncGenerator<string> {
    if (set.type === 'query') throw new Error(QUERY_UNSUPPORTED)
    if (set.type === 'pidList') {
      for (const pid of set.pids) {
        if (signal.aborted) return
        if (await this.exists(pid)) yield pid
      }
      return
    }
    const matches = compilePidPattern(set.pattern)
    for await (const pid of this.walk(this.base, signal)) {
      if (isValidPid(pid) && matches(pid)) yield pid
    }
  }

  /** Every object PID under `dir`, in directory order. */
  private async *walk(dir: string, signal: AbortSignal): AsyncGenerator<string> {
    if (signal.aborted) return
    let handle
    try {
      handle = await opendir(dir)
    } catch (err) {
      if (dir === this.base) {
        if (isMissing(err)) throw new Error(`The directory of the ${this.description} does not exist; create it or recreate the store.`)
        throw storeError(`Cannot list the ${this.description}`, err)
      }
      if (isMissing(err)) return // removed while we walked
      throw storeError(`Cannot list ${dir} in the ${this.description}`, err)
    }
    // Leaving this loop early (abort, consumer stopped) closes the directory.
    for await (const entry of handle) {
      if (signal.aborted) return
      const name = entry.name
      if (entry.isDirectory()) {
        yield* this.walk(join(dir, name), signal)
      } else if (entry.isFile()) {
        if (name.includes('+')) {
          if (isTempName(name)) await this.removeIfStale(join(dir, name))
          continue
        }
        const parsed = parseFileName(name)
        // A file outside its hashed directory is not where exists()/readObject() look.
        if (parsed?.kind === 'object' && objectDir(this.base, parsed.pid) === dir) yield parsed.pid
      }
    }
  }

  /** Remove a leftover temporary file of an interrupted write. */
  private async removeIfStale(path: string): Promise<void> {
    try {
      const info = await stat(path)
      if (Date.now() - info.mtimeMs > this.staleTempMs) await unlink(path)
    } catch {
      // Gone already, or not ours to remove: enumeration goes on.
    }
  }

  /** After a replace: content files of the old object that the new one does not have. */
  private async removeStaleContent(dir: string, pid: string, keep: Set<string>): Promise<void> {
    const prefix = encodeName(pid) + '+'
    try {
      for (const name of await readdir(dir)) {
        if (name.startsWith(prefix) && !keep.has(name) && parseFileName(name)?.kind === 'content') {
          await unlink(join(dir, name)).catch(() => undefined)
        }
      }
    } catch {
      // Best effort: stale content is invisible to readers of the new object.
    }
  }

  private objectPath(pid: string): string {
    return join(objectDir(this.base, pid), objectFileName(pid))
  }
}

/** The object as stored here: managed versions point at their content files. */
function withInternalLocations(obj: FoxmlObject): FoxmlObject {
  return {
    ...obj,
    datastreams: obj.datastreams.map((ds) =>
      ds.controlGroup !== 'M'
        ? ds
        : {
            ...ds,
            versions: ds.versions.map((v) => {
              const { binaryContent: _inline, ...rest } = v
              return { ...rest, contentLocation: { type: 'INTERNAL_ID', ref: `${obj.pid}+${ds.id}+${v.id}` } }
            }),
          },
    ),
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  return code === 'ENOENT' || code === 'ENOTDIR'
}

function isFsError(err: Error): boolean {
  return typeof (err as NodeJS.ErrnoException).code === 'string' && typeof (err as NodeJS.ErrnoException).syscall === 'string'
}

/** An error whose message says what failed, without the raw errno noise. */
function storeError(what: string, err: unknown): Error {
  const e = err as NodeJS.ErrnoException | undefined
  const reason = e?.code === 'EACCES' || e?.code === 'EPERM' ? 'permission denied' : e?.code === 'ENOSPC' ? 'no space left on the device' : e?.code ?? (e instanceof Error ? e.message : String(err))
  return new Error(`${what}: ${reason}.`, { cause: err })
}
