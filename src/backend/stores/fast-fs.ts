/**
 * The file operations of the filesystem store, in two interchangeable forms:
 *
 * - {@link asyncIo}: non-blocking, for the main thread. `fs/promises` wraps
 *   every descriptor in a `FileHandle` and reads a file in four round trips
 *   to the thread pool (open, fstat, read, close); for the small files of an
 *   object store that overhead costs more than the I/O. These use the
 *   callback API with numeric descriptors, skip the `fstat` (a short read of
 *   a regular file means end of file), and close read-only descriptors off
 *   the critical path.
 * - {@link blockingIo}: the same operations as blocking calls, for a worker
 *   thread, where a thread-pool round trip per call would only add latency.
 *
 * Both report failures as rejected promises with the usual `code`s.
 */
import { close, constants, copyFile, copyFileSync, mkdir, mkdirSync, open, openSync, read, readSync, closeSync, rename, renameSync, stat, statSync, writeFile, writeFileSync } from 'node:fs'
import { readdirSync } from 'node:fs'
import type { Dirent, Stats } from 'node:fs'
import { opendir } from 'node:fs/promises'
import { Readable } from 'node:stream'

const CHUNK = 64 * 1024
// Most object files fit; a bigger one costs one more read.
const FIRST_READ = 16 * 1024

/** An open directory, read one entry at a time (`null` at the end). */
export interface DirReader {
  read(): Promise<Dirent | null>
  close(): Promise<void>
}

/** What the filesystem store needs from the file system. */
export interface FsIo {
  opendir(path: string): Promise<DirReader>
  stat(path: string): Promise<Stats>
  /** The whole content of a regular file, decoded as UTF-8. */
  readText(path: string): Promise<string>
  /** `mkdir -p`; the first directory created, or undefined when it existed. */
  mkdirp(dir: string): Promise<string | undefined>
  /** Copy to a path that must not exist yet. */
  copyNewFile(from: string, to: string): Promise<void>
  /** Write text to a path that must not exist yet; `flush` syncs it to disk. */
  writeNewFile(path: string, text: string, flush: boolean): Promise<void>
  rename(from: string, to: string): Promise<void>
}

function noop(): void {}

function settle<T>(resolve: (value: T) => void, reject: (err: unknown) => void) {
  return (err: NodeJS.ErrnoException | null, value?: T) => (err ? reject(err) : resolve(value as T))
}

function readInto(fd: number, buffer: Buffer, offset: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buffer, offset, buffer.length - offset, -1, settle(resolve, reject)))
}

/**
 * Read until a short read (end of a regular file) into `buffer`, growing it
 * as needed; `readChunk` reads into a buffer at an offset.
 */
async function readAll(buffer: Buffer, readChunk: (buffer: Buffer, offset: number) => Promise<number>): Promise<{ buffer: Buffer; length: number }> {
  let length = 0
  for (;;) {
    length += await readChunk(buffer, length)
    if (length < buffer.length) return { buffer, length }
    const bigger = Buffer.allocUnsafe(buffer.length * 2)
    buffer.copy(bigger, 0, 0, length)
    buffer = bigger
  }
}

// Blocking reads are synchronous from open to decode: one buffer per thread serves them all.
const SCRATCH_MAX = 1024 * 1024
let scratch: Buffer | undefined

/**
 * Non-blocking file operations (main thread).
 *
 * @example
 * const text = await asyncIo.readText('/srv/store/d9/59/demo%3A1')
 */
export const asyncIo: FsIo = {
  // Entries come from the thread pool in batches (bufferSize); most reads need no round trip.
  opendir: async (path) => opendir(path, { bufferSize: 128 }),
  stat: (path) => new Promise((resolve, reject) => stat(path, settle(resolve, reject))),
  async readText(path) {
    const fd = await new Promise<number>((resolve, reject) => open(path, 'r', settle(resolve, reject)))
    try {
      const { buffer, length } = await readAll(Buffer.allocUnsafe(FIRST_READ), (b, offset) => readInto(fd, b, offset))
      return buffer.toString('utf8', 0, length)
    } finally {
      close(fd, noop) // read-only: nothing can be lost, so nobody waits for it
    }
  },
  mkdirp: (dir) => new Promise((resolve, reject) => mkdir(dir, { recursive: true }, settle(resolve, reject))),
  copyNewFile: (from, to) => new Promise((resolve, reject) => copyFile(from, to, constants.COPYFILE_EXCL, settle(resolve, reject))),
  writeNewFile: (path, text, flush) => new Promise((resolve, reject) => writeFile(path, text, { flag: 'wx', flush }, settle(resolve, reject))),
  rename: (from, to) => new Promise((resolve, reject) => rename(from, to, settle(resolve, reject))),
}

/**
 * Blocking file operations (worker threads only: they stall the event loop).
 *
 * @example
 * await blockingIo.rename('/srv/store/d9/59/x+~1.tmp', '/srv/store/d9/59/x')
 */
export const blockingIo: FsIo = {
  async opendir(path) {
    // One call lists a directory of the hashed layout (at most 256 entries, or a few files).
    const entries = readdirSync(path, { withFileTypes: true })
    let next = 0
    return { read: async () => entries[next++] ?? null, close: async () => undefined }
  },
  stat: async (path) => statSync(path),
  async readText(path) {
    const fd = openSync(path, 'r')
    try {
      // No await from here to the decode: nothing else can use the scratch buffer meanwhile.
      let buffer = (scratch ??= Buffer.allocUnsafe(CHUNK))
      let length = 0
      for (;;) {
        length += readSync(fd, buffer, length, buffer.length - length, null)
        if (length < buffer.length) break
        const bigger = Buffer.allocUnsafe(buffer.length * 2)
        buffer.copy(bigger, 0, 0, length)
        buffer = bigger
      }
      if (buffer.length <= SCRATCH_MAX) scratch = buffer
      return buffer.toString('utf8', 0, length)
    } finally {
      closeSync(fd)
    }
  },
  mkdirp: async (dir) => mkdirSync(dir, { recursive: true }),
  copyNewFile: async (from, to) => copyFileSync(from, to, constants.COPYFILE_EXCL),
  writeNewFile: async (path, text, flush) => writeFileSync(path, text, { flag: 'wx', flush }),
  rename: async (from, to) => renameSync(from, to),
}

/**
 * A stream over a file that opens it only when first read, so that a
 * consumer which copies the file by path (see `localPathOf`) costs no open
 * and close. A file removed meanwhile makes the stream error on first read.
 *
 * @example
 * lazyFileStream('/srv/store/d9/59/demo%3A1+IMG+IMG.0').pipe(res)
 */
export function lazyFileStream(path: string): Readable {
  let fd: number | undefined
  // While the thread pool works on the descriptor it must not be closed (its
  // number could be reused by another open); a destroy then waits for it.
  let busy = false
  let closeWhenIdle: (() => void) | undefined
  const idle = () => {
    busy = false
    const pending = closeWhenIdle
    closeWhenIdle = undefined
    pending?.()
  }
  return new Readable({
    highWaterMark: CHUNK,
    read(size) {
      const pull = (handle: number) => {
        const buffer = Buffer.allocUnsafe(Math.max(size, CHUNK))
        busy = true
        read(handle, buffer, 0, buffer.length, -1, (err, n) => {
          idle()
          if (this.destroyed) return
          if (err) return void this.destroy(err)
          this.push(n === 0 ? null : buffer.subarray(0, n))
        })
      }
      if (fd !== undefined) return pull(fd)
      busy = true
      open(path, 'r', (err, handle) => {
        if (!err) fd = handle
        idle()
        if (this.destroyed) return
        if (err) return void this.destroy(err)
        pull(handle)
      })
    },
    destroy(err, callback) {
      const finish = () => {
        if (fd === undefined) return callback(err)
        const handle = fd
        fd = undefined
        close(handle, (closeErr) => callback(err ?? closeErr))
      }
      if (busy) closeWhenIdle = finish
      else finish()
    },
  })
}
