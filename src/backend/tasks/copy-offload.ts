/**
 * Runs the loop of a copy task between filesystem stores in a worker thread
 * (see copy-worker.ts) while this thread keeps the run: it appends the
 * worker's log text, and answers the worker's checkpoints with the run's own
 * checkpoint (which pauses, resumes or cancels as usual).
 *
 * If the worker cannot start (e.g. a bundled deployment without the worker
 * file), the caller runs the loop in-process instead.
 */
import { Worker } from 'node:worker_threads'
import { filesystemOptionsOf } from '../stores/filesystem.js'
import { tempIncarnation } from '../stores/filesystem-layout.js'
import type { ObjectSetSpec, ObjectStoreConnector } from '../stores/types.js'
import type { CopyFlags } from './copy-object.js'
import { CONTROL, COPY_WORKER, VERDICT } from './copy-worker.js'
import type { CopyWorkerData, CopyWorkerMessage } from './copy-worker.js'
import { TaskRunError } from './runner.js'
import type { RunContext } from './runner.js'

// The worker's module next to this one (.ts when run from source by a TypeScript loader).
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './copy-worker.ts' : './copy-worker.js', import.meta.url)

export interface CopyStores {
  query: ObjectStoreConnector
  source: ObjectStoreConnector
  dest: ObjectStoreConnector
}

/**
 * Run the copy loop in a worker thread. Resolves `false` at once when the
 * stores are not all filesystem stores, `ctx` has no `onSignal`, or the
 * worker could not start (run the loop in-process then); otherwise resolves `true` when the loop is done
 * and rejects as the in-process loop would (errors, cancel).
 *
 * @example
 * if (!(await runCopyInWorker(ctx, { query, source, dest }, spec, flags))) await copyInProcess()
 */
export async function runCopyInWorker(ctx: RunContext, stores: CopyStores, set: ObjectSetSpec, flags: CopyFlags): Promise<boolean> {
  const query = filesystemOptionsOf(stores.query)
  const source = filesystemOptionsOf(stores.source)
  const dest = filesystemOptionsOf(stores.dest)
  const onSignal = ctx.onSignal
  if (query === undefined || source === undefined || dest === undefined || onSignal === undefined) return false

  const shared = new SharedArrayBuffer(4 * Int32Array.BYTES_PER_ELEMENT)
  const control = new Int32Array(shared)
  const workerData: CopyWorkerData = { kind: COPY_WORKER, query, source, dest, set, flags: { ...flags }, tempIncarnation: tempIncarnation(), control: shared }
  let worker: Worker
  try {
    worker = new Worker(WORKER_URL, { workerData })
  } catch {
    return false
  }
  const inbox = new Inbox(worker)
  const answer = (verdict: number) => {
    Atomics.store(control, CONTROL.verdict, verdict)
    Atomics.notify(control, CONTROL.verdict)
  }
  // A pause or cancel calls the worker to its next checkpoint; a cancel also stops its enumeration.
  const stopListening = onSignal((signal) => {
    if (signal === 'resume') return
    Atomics.store(control, CONTROL.attention, 1)
    if (signal === 'cancel') Atomics.store(control, CONTROL.canceled, 1)
  })
  let started = false
  try {
    for (;;) {
      let message: CopyWorkerMessage
      try {
        message = await inbox.next()
      } catch (err) {
        if (!started) return false // nothing was done there: the caller copies in-process
        throw new Error(`The copy worker stopped unexpectedly (${err instanceof Error ? err.message : String(err)}); start the task again.`)
      }
      if (message.type === 'ready') {
        started = true
        continue
      }
      // Text that arrived meanwhile goes out in the same write.
      const text = message.type === 'text' ? message.text + inbox.takeText() : message.text
      if (text.length > 0) await ctx.log.append(text)
      switch (message.type) {
        case 'text':
          continue
        case 'checkpoint':
          // Cleared first: a signal arriving from here on calls the worker back at its next checkpoint.
          Atomics.store(control, CONTROL.attention, 0)
          try {
            await ctx.checkpoint()
          } catch (err) {
            answer(VERDICT.stop)
            throw err
          }
          answer(VERDICT.go)
          continue
        case 'done':
        case 'stopped':
          return true
        case 'error':
          throw message.runError ? new TaskRunError(message.message) : new Error(message.message)
      }
    }
  } finally {
    stopListening()
    // Let it stop at its next checkpoint (its temporary files removed), never leave it waiting.
    Atomics.store(control, CONTROL.canceled, 1)
    Atomics.store(control, CONTROL.attention, 1)
    answer(VERDICT.stop)
    await Promise.race([inbox.exited, new Promise((resolve) => setTimeout(resolve, STOP_GRACE_MS).unref())])
    await worker.terminate().catch(() => undefined)
  }
}

/** How long a worker may take to reach its next checkpoint when the run ends early. */
const STOP_GRACE_MS = 5000

/** The worker's messages in order; rejects once the worker fails or exits. */
class Inbox {
  private readonly queue: CopyWorkerMessage[] = []
  private waiting: { resolve: (m: CopyWorkerMessage) => void; reject: (err: Error) => void } | undefined
  private failure: Error | undefined
  /** Resolves when the worker has exited. */
  readonly exited: Promise<void>

  constructor(worker: Worker) {
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()))
    worker.on('message', (message: CopyWorkerMessage) => {
      const w = this.waiting
      this.waiting = undefined
      if (w !== undefined) w.resolve(message)
      else this.queue.push(message)
    })
    const fail = (err: Error) => {
      this.failure ??= err
      const w = this.waiting
      this.waiting = undefined
      w?.reject(this.failure)
    }
    worker.on('error', fail)
    worker.on('exit', (code) => fail(new Error(`it exited with code ${code}`)))
  }

  /** The text of the `text` messages at the head of the queue, removed from it. */
  takeText(): string {
    let text = ''
    while (this.queue.length > 0 && this.queue[0]!.type === 'text') text += (this.queue.shift() as { text: string }).text
    return text
  }

  next(): Promise<CopyWorkerMessage> {
    const queued = this.queue.shift()
    if (queued !== undefined) return Promise.resolve(queued)
    if (this.failure !== undefined) return Promise.reject(this.failure)
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }))
  }
}
