/**
 * Log text from a worker thread to the main thread through shared memory:
 * one writer (the worker) appends whole lines, one reader (the main thread)
 * takes what has been written every few milliseconds. No message per line,
 * and a worker that is blocked in a slow file operation still has every line
 * it finished before picked up.
 *
 * The buffer holds two counters (bytes written, bytes read; both only grow,
 * modulo 2^32) and a ring of UTF-8 bytes. The writer publishes a line by
 * moving `written` past it, so the reader only ever sees whole lines. A full
 * ring makes the writer wait until the reader has taken some.
 */

const WRITTEN = 0
const READ = 1
const HEADER_BYTES = 2 * Int32Array.BYTES_PER_ELEMENT
/** How long a writer waits for room at a time before looking again (ms). */
const ROOM_WAIT_MS = 50

/**
 * One side of a log ring over a shared buffer made by {@link LogRing.create}.
 *
 * @example
 * const shared = LogRing.create()
 * new LogRing(shared).write('Copying demo:1..OK (new in destination)\n') // in the worker
 * new LogRing(shared).take() // in the main thread: 'Copying demo:1..OK (new in destination)\n'
 */
export class LogRing {
  private readonly counters: Int32Array
  private readonly bytes: Buffer
  private readonly mask: number

  /**
   * A shared buffer for a ring of `capacity` bytes (a power of two, at least 1 KiB).
   *
   * @example
   * new Worker(url, { workerData: { log: LogRing.create() } })
   */
  static create(capacity = 256 * 1024): SharedArrayBuffer {
    if (!Number.isInteger(capacity) || capacity < 1024 || (capacity & (capacity - 1)) !== 0 || capacity > 2 ** 30) {
      throw new RangeError('LogRing.create: capacity must be a power of two from 1024 to 2^30')
    }
    return new SharedArrayBuffer(HEADER_BYTES + capacity)
  }

  constructor(buffer: SharedArrayBuffer) {
    this.counters = new Int32Array(buffer, 0, 2)
    this.bytes = Buffer.from(buffer, HEADER_BYTES)
    this.mask = this.bytes.length - 1
  }

  /** The ring's size in bytes: the longest text one {@link write} takes. */
  get capacity(): number {
    return this.bytes.length
  }

  /**
   * Writer: append `text` (whole lines), waiting while the ring is too full.
   * Returns false, writing nothing, when `text` is longer than the ring.
   */
  write(text: string): boolean {
    const length = Buffer.byteLength(text, 'utf8')
    if (length > this.bytes.length) return false
    const written = this.counters[WRITTEN]!
    for (;;) {
      const read = Atomics.load(this.counters, READ)
      if (this.bytes.length - ((written - read) | 0) >= length) break
      Atomics.wait(this.counters, READ, read, ROOM_WAIT_MS)
    }
    const at = written & this.mask
    if (at + length <= this.bytes.length) {
      this.bytes.write(text, at, length, 'utf8')
    } else {
      // Wraps around the end: encode once, copy in two parts.
      const encoded = Buffer.from(text, 'utf8')
      const first = this.bytes.length - at
      encoded.copy(this.bytes, at, 0, first)
      encoded.copy(this.bytes, 0, first)
    }
    Atomics.store(this.counters, WRITTEN, (written + length) | 0)
    return true
  }

  /** Reader: everything written since the last take (whole lines), removed from the ring. */
  take(): string {
    const written = Atomics.load(this.counters, WRITTEN)
    const read = this.counters[READ]!
    const length = (written - read) | 0
    if (length === 0) return ''
    const at = read & this.mask
    const text =
      at + length <= this.bytes.length
        ? this.bytes.toString('utf8', at, at + length)
        : // A character may straddle the end: join the bytes before decoding.
          Buffer.concat([this.bytes.subarray(at), this.bytes.subarray(0, length - (this.bytes.length - at))]).toString('utf8')
    Atomics.store(this.counters, READ, written)
    Atomics.notify(this.counters, READ)
    return text
  }
}
