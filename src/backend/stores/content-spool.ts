/**
 * Content taken from its source stream once, for an upload that needs its
 * length and MD5 before the body and may have to send it again (a retried
 * `PUT`): kept in memory up to a limit, beyond it in a private temporary
 * file, with the MD5 of the whole and of each chunk computed on the way.
 * Memory stays flat whatever the content size.
 */
import { createHash, randomUUID } from 'node:crypto'
import type { Hash } from 'node:crypto'
import { open, rm } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'

/** Where and how content is spooled. */
export interface SpoolSettings {
  /** Chunk size: an MD5 is computed for every piece of this many bytes. */
  chunkSize: number
  /** Directory of the temporary files. */
  tempDir: string
  /** Content up to this many bytes stays in memory. */
  memorySpoolBytes: number
}

export /** A request body that can be produced again for a retry. */
interface Body {
  length: number
  /** A fresh stream of the bytes; `touch` is called as pieces are taken. */
  open(touch: () => void): ReadableStream<Uint8Array> | Uint8Array
}

/**
 * One version's content, taken from its source once: its size, MD5 and the
 * MD5 of each chunk, and the bytes kept in memory (small content) or in a
 * temporary file, so that any part can be sent (and sent again) later.
 */
export class Spool {
  size = 0
  md5 = ''
  readonly chunkMd5s: string[] = []
  private memory: Buffer[] = []
  private file: FileHandle | undefined
  private path: string | undefined

  private constructor(private readonly s: SpoolSettings) {}

  static async fill(source: Readable, s: SpoolSettings): Promise<Spool> {
    const spool = new Spool(s)
    try {
      await spool.take(source)
    } catch (err) {
      source.destroy()
      await spool.dispose()
      throw err
    }
    return spool
  }

  private async take(source: Readable): Promise<void> {
    const chunkSize = this.s.chunkSize
    const whole = createHash('md5')
    let chunk: Hash | undefined // the current chunk's hash from the second chunk on
    let inChunk = 0
    for await (const data of source) {
      const buf = typeof data === 'string' ? Buffer.from(data) : (data as Buffer)
      // Split at chunk boundaries: at the end of the first chunk the whole
      // hash covers exactly that chunk; later chunks get their own hash.
      let at = 0
      while (at < buf.length) {
        const n = Math.min(chunkSize - inChunk, buf.length - at)
        const part = buf.subarray(at, at + n)
        whole.update(part)
        if (chunk !== undefined) chunk.update(part)
        inChunk += n
        at += n
        if (inChunk === chunkSize) {
          this.chunkMd5s.push(chunk === undefined ? whole.copy().digest('hex') : chunk.digest('hex'))
          chunk = createHash('md5')
          inChunk = 0
        }
      }
      this.size += buf.length
      if (this.file === undefined && this.size > this.s.memorySpoolBytes) await this.toFile()
      if (this.file !== undefined) await this.file.write(buf)
      else this.memory.push(buf)
    }
    if (inChunk > 0 || this.chunkMd5s.length === 0) this.chunkMd5s.push(chunk === undefined ? whole.copy().digest('hex') : chunk.digest('hex'))
    this.md5 = whole.digest('hex')
    if (this.memory.length > 1) this.memory = [Buffer.concat(this.memory)]
  }

  private async toFile(): Promise<void> {
    this.path = join(this.s.tempDir, `cloudsync-duracloud-${randomUUID()}.tmp`)
    this.file = await open(this.path, 'wx+', 0o600)
    for (const buf of this.memory) await this.file.write(buf)
    this.memory = []
  }

  /** `length` bytes from `start`, as a body that can be produced again. */
  body(start: number, length: number): Body {
    if (this.file === undefined) return memoryBody(this.memory[0]?.subarray(start, start + length) ?? Buffer.alloc(0))
    const file = this.file
    return {
      length,
      open(touch) {
        let pos = start
        const end = start + length
        return new ReadableStream<Uint8Array>({
          async pull(controller) {
            if (pos >= end) {
              controller.close()
              return
            }
            const buf = Buffer.allocUnsafe(Math.min(256 * 1024, end - pos))
            const { bytesRead } = await file.read(buf, 0, buf.length, pos)
            if (bytesRead === 0) {
              controller.error(new Error('the spooled content ended early'))
              return
            }
            pos += bytesRead
            touch()
            controller.enqueue(buf.subarray(0, bytesRead))
          },
        })
      },
    }
  }

  async dispose(): Promise<void> {
    this.memory = []
    const file = this.file
    this.file = undefined
    if (file !== undefined) await file.close().catch(() => undefined)
    if (this.path !== undefined) await rm(this.path, { force: true }).catch(() => undefined)
  }
}

export function memoryBody(bytes: Uint8Array): Body {
  return {
    length: bytes.byteLength,
    open(touch) {
      touch()
      return bytes
    },
  }
}
