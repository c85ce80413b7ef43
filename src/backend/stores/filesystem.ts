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
 *   temporaries are removed, never what existed before [D30]. A killed
 *   process therefore never leaves a partial object; only `durable` adds the
 *   flushes that protect against a power loss.
 * - Content copied from another filesystem store is copied by path, in one
 *   kernel call, instead of being streamed through JavaScript.
 * - Directories known to exist are remembered, so that most writes make no
 *   `mkdir` call; a write that finds its directory gone creates it again.
 */
import { createWriteStream } from 'node:fs'
import { open, readdir, rm, stat, unlink } from 'node:fs/promises'
import { isAbsolute, join, resolve } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { asyncIo, blockingIo, lazyFileStream } from './fast-fs.js'
import type { DirReader, FsIo } from './fast-fs.js'
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
  tempOwner,
} from './filesystem-layout.js'
import { compilePidPattern, isValidPid } from './pid.js'
import type { ContentSource, ObjectSetSpec, ObjectStoreConnector, WriteOptions, WriteOutcome } from './types.js'

export interface FilesystemConnectorOptions {
  /** The store's base directory (`data.path`); must be absolute. */
  path: string
  /**
   * Temporary files of a live writer older than this (ms) are removed when
   * enumeration meets them. Default 1 hour. (Leftovers of a writer that no
   * longer runs on this host are removed at once.)
   */
  staleTempMs?: number
  /**
   * Flush every written file and its directory to stable storage before a
   * write counts as done, so that copies survive a power loss or kernel
   * crash. Default false: a killed process never leaves a partial object
   * either way (files are completed under temporary names and renamed into
   * place), and skipping the flushes makes copies many times faster.
   */
  durable?: boolean
  /**
   * Use blocking file calls. Only for a worker thread (they stall the event
   * loop), where they save a thread-pool round trip per call. Default false.
   */
  blocking?: boolean
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
  const durable = options.durable ?? false
  if (typeof durable !== 'boolean') throw new TypeError('filesystemConnector: option "durable" must be a boolean')
  const blocking = options.blocking ?? false
  if (typeof blocking !== 'boolean') throw new TypeError('filesystemConnector: option "blocking" must be a boolean')
  return new FilesystemStore({ path: resolve(options.path), staleTempMs, durable, blocking })
}

/**
 * The options a filesystem connector was made with (path resolved, defaults
 * filled in), or undefined for any other connector. Lets a runner recreate
 * the same store elsewhere, e.g. in a worker thread.
 *
 * @example
 * const fs = filesystemOptionsOf(dest) // { path: '/srv/x', staleTempMs: 3600000, durable: false, blocking: false }
 */
export function filesystemOptionsOf(connector: ObjectStoreConnector): Required<FilesystemConnectorOptions> | undefined {
  return connector instanceof FilesystemStore ? { ...connector.options } : undefined
}

/** Directories remembered per connector before the memory starts over. */
const KNOWN_DIRS_MAX = 100_000

class FilesystemStore implements ObjectStoreConnector {
  readonly description: string
  private readonly base: string
  private readonly io: FsIo
  /** Object directories known to exist (made or met by this connector). */
  private readonly knownDirs = new Set<string>()
  // The directory of the PID asked last: a copy asks for the same one several times in a row.
  private lastPid = ''
  private lastDir = ''

  constructor(readonly options: Required<FilesystemConnectorOptions>) {
    this.base = options.path
    this.io = options.blocking ? blockingIo : asyncIo
    this.description = `filesystem store ${this.base}`
  }

  async exists(pid: string): Promise<boolean> {
    try {
      return (await this.io.stat(this.objectPath(pid))).isFile()
    } catch (err) {
      if (isMissing(err)) return false
      throw storeError(`Cannot check whether ${pid} exists in the ${this.description}`, err)
    }
  }

  async readObject(pid: string): Promise<FoxmlObject | undefined> {
    let text: string
    try {
      text = await this.io.readText(this.objectPath(pid))
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
    const path = join(this.dirOf(pid), contentFileName(pid, dsId, versionId))
    try {
      if (!(await this.io.stat(path)).isFile()) return undefined
    } catch (err) {
      if (isMissing(err)) return undefined
      throw storeError(`Cannot read ${pid} datastream ${dsId} version ${versionId} from the ${this.description}`, err)
    }
    // Opened only if read: another filesystem store copies it by path instead.
    const stream: LocalContent = lazyFileStream(path)
    stream[LOCAL_PATH] = path
    return stream
  }

  /** See {@link contentForCopy}: like readContent, but the file is not looked at first. */
  localContent(pid: string, dsId: string, versionId: string, ifAbsent: () => Promise<Readable>): Readable {
    const path = join(this.dirOf(pid), contentFileName(pid, dsId, versionId))
    const stream: LocalContent = lazyFileStream(path)
    stream[LOCAL_PATH] = path
    stream[IF_ABSENT] = ifAbsent
    return stream
  }

  async writeObject(obj: FoxmlObject, contents: ContentSource, options: WriteOptions): Promise<WriteOutcome> {
    const pid = obj.pid
    const dir = this.dirOf(pid)
    let fresh: boolean
    try {
      fresh = await this.ensureDir(dir)
    } catch (err) {
      throw storeError(`Cannot create the directory for ${pid} in the ${this.description}`, err)
    }
    // A directory made just now holds no object: no need to ask.
    const existed = !fresh && (await this.exists(pid))
    if (existed && !options.overwrite) return 'skipped'

    const contentFiles: Array<{ temp: string; final: string }> = []
    const jobs: Array<() => Promise<void>> = []
    const written = new Set<string>()
    for (const ds of obj.datastreams) {
      if (ds.controlGroup !== 'M') continue
      for (const v of ds.versions) {
        const name = contentFileName(pid, ds.id, v.id)
        const file = { temp: join(dir, tempName(name)), final: join(dir, name) }
        contentFiles.push(file)
        written.add(name)
        jobs.push(async () => this.writeContent(dir, file.temp, await contents(ds.id, v.id)))
      }
    }
    const objectFile = { temp: join(dir, tempName(objectFileName(pid))), final: join(dir, objectFileName(pid)) }
    // Managed versions are recorded where this store keeps their content.
    const text = serializeFoxml(obj, { managedLocation: (dsId, versionId) => ({ type: 'INTERNAL_ID', ref: `${pid}+${dsId}+${versionId}` }) })
    jobs.push(() => this.inDir(dir, () => this.io.writeNewFile(objectFile.temp, text, this.options.durable)))
    let renamed = 0
    try {
      // Every file goes to its temporary name first (a few at a time); only
      // when all are complete do they move into place, the object file last.
      await this.runAll(jobs)
      await this.runAll(contentFiles.map((f) => () => this.io.rename(f.temp, f.final).then(() => void renamed++)))
      // The renames live in the directory: flush it, so that the object file
      // can never outlive its content on a power loss.
      if (this.options.durable) await syncPath(dir)
      await this.io.rename(objectFile.temp, objectFile.final)
      renamed++
      if (this.options.durable) await syncPath(dir)
    } catch (err) {
      if (renamed <= contentFiles.length) await Promise.all([...contentFiles, objectFile].map((f) => rm(f.temp, { force: true }).catch(() => undefined)))
      if (err instanceof Error && !isFsError(err)) throw err
      throw storeError(`Cannot write ${pid} to the ${this.description}`, err)
    }
    if (existed) await this.removeStaleContent(dir, pid, written)
    return existed ? 'replaced' : 'new'
  }

  /** Blocking calls one after another (stopping at the first failure); non-blocking ones a few at a time. */
  private async runAll(jobs: Array<() => Promise<void>>): Promise<void> {
    if (!this.options.blocking) return runLimited(jobs, WRITE_CONCURRENCY)
    for (const job of jobs) await job()
  }

  /** Make `dir` unless it is known to exist; true when it (or a parent) was made just now. */
  private async ensureDir(dir: string): Promise<boolean> {
    if (this.knownDirs.has(dir)) return false
    const created = await this.io.mkdirp(dir)
    this.remember(dir)
    return created !== undefined
  }

  private remember(dir: string): void {
    if (this.knownDirs.size >= KNOWN_DIRS_MAX) this.knownDirs.clear()
    this.knownDirs.add(dir)
  }

  /**
   * Run `write` (which creates a file in `dir`); when it fails with ENOENT,
   * perhaps because `dir` was removed meanwhile, make `dir` again and retry
   * once. (The ENOENT may be about something else, such as the file being
   * copied; the retry then fails the same way. A concurrent write may have
   * made `dir` already, so a retry does not depend on who made it.)
   */
  private async inDir(dir: string, write: () => Promise<void>): Promise<void> {
    try {
      await write()
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      this.knownDirs.delete(dir)
      await this.io.mkdirp(dir)
      this.remember(dir)
      await write()
    }
  }

  /** One version's content to its temporary file in `dir`. */
  private async writeContent(dir: string, temp: string, source: Readable): Promise<void> {
    const local = (source as LocalContent)[LOCAL_PATH]
    if (local === undefined) {
      // A stream cannot be read twice, so no retry: make sure of the directory first (cheap next to streaming).
      await this.io.mkdirp(dir)
      await pipeline(source, createWriteStream(temp, { flags: 'wx', flush: this.options.durable }))
      return
    }
    try {
      await this.inDir(dir, () => this.io.copyNewFile(local, temp))
    } catch (err) {
      // Content handed over unchecked (see contentForCopy): when the source
      // file is not there, write what the caller supplies instead.
      const ifAbsent = (source as LocalContent)[IF_ABSENT]
      if (ifAbsent === undefined || (await this.isFile(local))) throw err
      await rm(temp, { force: true })
      await pipeline(await ifAbsent(), createWriteStream(temp, { flags: 'wx', flush: this.options.durable }))
    } finally {
      source.destroy() // never opened: nothing to close
    }
    if (this.options.durable) await syncPath(temp)
  }

  private async isFile(path: string): Promise<boolean> {
    try {
      return (await this.io.stat(path)).isFile()
    } catch {
      return false
    }
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

  /** See {@link enumerateShare}. */
  async *enumerateShare(pattern: string, signal: AbortSignal, share: Share): AsyncGenerator<string> {
    const matches = compilePidPattern(pattern)
    for await (const pid of this.walk(this.base, signal, share)) {
      if (isValidPid(pid) && matches(pid)) yield pid
    }
  }

  /** Every object PID under `dir`, in directory order; in the base directory, only the entries of `share`. */
  private async *walk(dir: string, signal: AbortSignal, share?: Share): AsyncGenerator<string> {
    if (signal.aborted) return
    let handle: DirReader
    try {
      handle = await this.io.opendir(dir)
    } catch (err) {
      if (dir === this.base) {
        if (isMissing(err)) throw new Error(`The directory of the ${this.description} does not exist; create it or recreate the store.`)
        throw storeError(`Cannot list the ${this.description}`, err)
      }
      if (isMissing(err)) return // removed while we walked
      throw storeError(`Cannot list ${dir} in the ${this.description}`, err)
    }
    // Leaving this loop early (abort, consumer stopped) closes the directory.
    try {
      for (let entry = await handle.read(); entry !== null; entry = await handle.read()) {
        if (signal.aborted) return
        const name = entry.name
        if (share !== undefined && shareOf(name, entry.isDirectory(), share.count) !== share.index) continue
        if (entry.isDirectory()) {
          yield* this.walk(join(dir, name), signal)
        } else if (entry.isFile()) {
          if (name.includes('+')) {
            if (isTempName(name)) await this.removeIfStale(join(dir, name), name)
            continue
          }
          const parsed = parseFileName(name)
          // A file outside its hashed directory is not where exists()/readObject() look.
          if (parsed?.kind === 'object' && objectDir(this.base, parsed.pid) === dir) yield parsed.pid
        }
      }
    } finally {
      await handle.close().catch(() => undefined)
    }
  }

  /** Remove a leftover temporary file of an interrupted write (never one being written). */
  private async removeIfStale(path: string, name: string): Promise<void> {
    try {
      // A crashed writer's leftovers go at once; anything else only once it is old.
      if (tempOwner(name) !== 'dead' && Date.now() - (await stat(path)).mtimeMs <= this.options.staleTempMs) return
      await unlink(path)
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
    return join(this.dirOf(pid), objectFileName(pid))
  }

  private dirOf(pid: string): string {
    if (pid !== this.lastPid) {
      this.lastDir = objectDir(this.base, pid)
      this.lastPid = pid
    }
    return this.lastDir
  }
}

/**
 * For a copy between two filesystem stores: the content of one version in
 * `source`, as a stream that `dest` copies by path, handed over without
 * looking at the file first (a system call less per version). When the file
 * is not there (or is not a regular file), `dest` writes what `ifAbsent`
 * supplies instead, or fails with its error — what a caller of
 * `readContent` would do on `undefined`. `undefined` unless both stores are
 * filesystem stores (use `readContent` then).
 *
 * @example
 * const stream = contentForCopy(source, dest, 'demo:1', 'IMG', 'IMG.0', async () => { throw new Error('no content') })
 *   ?? (await source.readContent('demo:1', 'IMG', 'IMG.0'))
 */
export function contentForCopy(
  source: ObjectStoreConnector,
  dest: ObjectStoreConnector,
  pid: string,
  dsId: string,
  versionId: string,
  ifAbsent: () => Promise<Readable>,
): Readable | undefined {
  if (!(source instanceof FilesystemStore) || !(dest instanceof FilesystemStore)) return undefined
  return source.localContent(pid, dsId, versionId, ifAbsent)
}

/** One part of a walk divided between several walkers: `index` of `count`. */
export interface Share {
  index: number
  count: number
}

/**
 * Part `share.index` of `share.count` of the pattern enumeration of a
 * filesystem store: the walk of every top-level directory whose name falls
 * into that share. Together the shares enumerate exactly what `enumerate`
 * does for the pattern (in another order), each object once, so that
 * several threads can walk one store. Stops as soon as `signal` is aborted.
 *
 * @example
 * for await (const pid of enumerateShare(store, '*', signal, { index: 0, count: 2 })) console.log(pid)
 */
export function enumerateShare(connector: ObjectStoreConnector, pattern: string, signal: AbortSignal, share: Share): AsyncGenerator<string> {
  if (!(connector instanceof FilesystemStore)) throw new TypeError('enumerateShare: not a filesystem store connector')
  if (!Number.isInteger(share.count) || share.count < 1 || !Number.isInteger(share.index) || share.index < 0 || share.index >= share.count) {
    throw new RangeError('enumerateShare: share.index must be an integer from 0 to share.count - 1')
  }
  return connector.enumerateShare(pattern, signal, share)
}

/** Which share a top-level entry belongs to: directories by a hash of their name (even for the hex names of the layout), files to share 0. */
function shareOf(name: string, isDirectory: boolean, count: number): number {
  if (!isDirectory) return 0
  let h = 0x811c9dc5
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193)
  return (h >>> 0) % count
}

/** A stream over a file of a filesystem store, carrying the file's path. */
const LOCAL_PATH = Symbol('cloudsync.localContentPath')
/** What to write instead when the file turns out not to be there (see contentForCopy). */
const IF_ABSENT = Symbol('cloudsync.ifContentAbsent')
type LocalContent = Readable & { [LOCAL_PATH]?: string; [IF_ABSENT]?: () => Promise<Readable> }

/** Temporary files written at once per object. */
const WRITE_CONCURRENCY = 4

/** Run `jobs` with at most `limit` in flight; rejects with the first failure in job order, after all have settled. */
async function runLimited(jobs: Array<() => Promise<void>>, limit: number): Promise<void> {
  const results: Array<PromiseSettledResult<void>> = new Array(jobs.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const i = next++
      try {
        results[i] = { status: 'fulfilled', value: await jobs[i]!() }
      } catch (reason) {
        results[i] = { status: 'rejected', reason }
        next = jobs.length // start nothing new after a failure
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker))
  for (const r of results) if (r?.status === 'rejected') throw r.reason
}

/** fsync a file or directory. */
async function syncPath(path: string): Promise<void> {
  const handle = await open(path, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
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
