/**
 * Runs the loop of a copy task between filesystem stores in worker threads
 * (see copy-worker.ts) while this thread keeps the run: it appends the
 * workers' log lines (taken from their log rings every 20 ms, and before
 * anything a worker says), and answers their checkpoints with the run's own
 * checkpoint (which pauses, resumes or cancels as usual).
 *
 * A `pidPattern` set may be walked by several workers at once, each taking
 * its share of the store's top-level directories (spec §5.6 leaves the order
 * of a pattern enumeration open); a `pidList` set is copied by one worker,
 * in list order. With several workers:
 *
 * - the log gets whole lines only, so lines of different workers never mix;
 * - a pause waits until every worker has reached a checkpoint, then the
 *   run's checkpoint writes `# Paused at` once; nothing is copied until it
 *   resumes;
 * - a failure in one worker stops the others at their next checkpoint; once
 *   all have stopped, the failed object's `Copying <pid>..` line is written
 *   last, for the run's `ERROR:` to complete.
 *
 * Worker threads are kept between runs (copy-pool.ts), so that only the first
 * copy pays for starting them. If a worker cannot start (e.g. a bundled
 * deployment without the worker file), the caller runs the loop in-process
 * instead.
 */
import { availableParallelism } from 'node:os'
import type { Worker } from 'node:worker_threads'
import { filesystemOptionsOf } from '../stores/filesystem.js'
import { tempIncarnation } from '../stores/filesystem-layout.js'
import type { ObjectSetSpec, ObjectStoreConnector } from '../stores/types.js'
import type { CopyFlags } from './copy-object.js'
import { giveBackCopyWorker, startCopyWorker, takeCopyWorker } from './copy-pool.js'
import { CONTROL, VERDICT, controlLength } from './copy-worker.js'
import type { CopyWorkerData, CopyWorkerMessage } from './copy-worker.js'
import { errorLine } from './log-format.js'
import { LogRing } from './log-ring.js'
import { TaskRunError } from './runner.js'
import type { RunContext, RunSignal } from './runner.js'

export interface CopyStores {
  query: ObjectStoreConnector
  source: ObjectStoreConnector
  dest: ObjectStoreConnector
}

/**
 * Worker threads for the copy of a pattern set when not configured: one per
 * core, at most two (the file system does the rest of the work).
 *
 * @example
 * defaultCopyThreads() // 2 on a machine with 2 or more cores
 */
export function defaultCopyThreads(): number {
  return Math.max(1, Math.min(2, availableParallelism()))
}

/**
 * Run the copy loop in worker threads: `threads` of them for a `pidPattern`
 * set (default {@link defaultCopyThreads}), one for any other set. Resolves
 * `false` at once when the stores are not all filesystem stores, `ctx` has
 * no `onSignal`, or the workers could not start (run the loop in-process
 * then); otherwise resolves `true` when the loop is done and rejects as the
 * in-process loop would (errors, cancel).
 *
 * @example
 * if (!(await runCopyInWorker(ctx, { query, source, dest }, spec, flags))) await copyInProcess()
 */
export async function runCopyInWorker(ctx: RunContext, stores: CopyStores, set: ObjectSetSpec, flags: CopyFlags, threads = defaultCopyThreads()): Promise<boolean> {
  const query = filesystemOptionsOf(stores.query)
  const source = filesystemOptionsOf(stores.source)
  const dest = filesystemOptionsOf(stores.dest)
  const onSignal = ctx.onSignal
  if (query === undefined || source === undefined || dest === undefined || onSignal === undefined) return false
  const count = set.type === 'pidPattern' ? Math.max(1, Math.floor(threads)) : 1
  const run = new WorkerRun(ctx, count)
  // A pause or cancel calls the workers to their next checkpoint; a cancel also stops their enumeration.
  const stopListening = onSignal((signal) => run.signal(signal))
  try {
    if (!(await run.start({ query, source, dest, set, flags: { ...flags } }))) return false
    await run.copy()
    return true
  } finally {
    stopListening()
    await run.close()
  }
}

type Job = Pick<CopyWorkerData, 'query' | 'source' | 'dest' | 'set' | 'flags'>

/** The workers of one copy run, their shared memory, and what the main thread knows of them. */
class WorkerRun {
  private readonly control: Int32Array
  private readonly inbox = new Inbox()
  private readonly workers: Worker[] = []
  private readonly detach: Array<() => void> = []
  private readonly rings: LogRing[] = []
  /** Workers that can take a job (kept ones at once, new ones once loaded). */
  private readonly ready = new Set<number>()
  /** Workers waiting at a checkpoint for the run's verdict. */
  private readonly parked = new Set<number>()
  /** Workers done with the job: said their last word, or failed. */
  private readonly finished = new Set<number>()
  /** Workers that said their last word: fit for the next run. */
  private readonly reusable = new Set<number>()
  private jobsSent = false
  /** The first failure: the `Copying <pid>..` it leaves open, and the run's error. */
  private failure: { open: string; error: Error } | undefined
  private drainedAt = 0

  constructor(
    private readonly ctx: RunContext,
    private readonly count: number,
  ) {
    this.control = new Int32Array(new SharedArrayBuffer(controlLength(count) * Int32Array.BYTES_PER_ELEMENT))
    // A signal may have come before anybody listened: the workers' first checkpoint asks the run.
    Atomics.store(this.control, CONTROL.attention, 1)
  }

  signal(signal: RunSignal): void {
    if (signal === 'resume') return
    Atomics.store(this.control, CONTROL.attention, 1)
    if (signal === 'cancel') Atomics.store(this.control, CONTROL.canceled, 1)
  }

  /** Get the workers and give them the job; false (nothing done) when one of them cannot start. */
  async start(job: Job): Promise<boolean> {
    try {
      for (let index = 0; index < this.count; index++) {
        const kept = takeCopyWorker()
        const worker = kept ?? startCopyWorker()
        this.workers.push(worker)
        this.detach.push(this.inbox.attach(worker, index))
        if (kept !== undefined) this.ready.add(index)
      }
    } catch {
      return false
    }
    // Nothing is copied until every worker is ready.
    while (this.ready.size < this.count) {
      const event = (await this.inbox.next())!
      if ('failure' in event) {
        this.ready.delete(event.from)
        return false
      }
      if (event.message.type === 'ready') this.ready.add(event.from)
    }
    const base = { ...job, tempIncarnation: tempIncarnation(), control: this.control.buffer as SharedArrayBuffer }
    this.workers.forEach((worker, index) => {
      const log = LogRing.create()
      this.rings.push(new LogRing(log))
      const data: CopyWorkerData = { ...base, log, share: { index, count: this.count } }
      worker.postMessage({ type: 'job', job: data })
    })
    this.jobsSent = true
    return true
  }

  /** Until every worker is done: their lines into the log, their checkpoints to the run's. Rejects as the in-process loop would. */
  async copy(): Promise<void> {
    this.drainedAt = performance.now()
    while (this.finished.size < this.count) {
      const event = await this.inbox.next(DRAIN_MS)
      // Every DRAIN_MS: a worker that is stuck in a slow object shows what it has done.
      if (event === undefined || performance.now() - this.drainedAt >= DRAIN_MS) await this.drainAll()
      if (event === undefined) continue
      // What a worker wrote before it spoke comes first.
      await this.append(this.rings[event.from]!.take())
      if ('failure' in event) this.lost(event.from, event.failure)
      else await this.handle(event.from, event.message)
      // Every worker still copying has reached a checkpoint: the run's checkpoint decides for all.
      if (this.failure === undefined && this.parked.size > 0 && this.parked.size + this.finished.size === this.count) await this.checkpoint()
    }
    await this.drainAll()
    if (this.failure !== undefined) {
      await this.append(this.failure.open)
      throw this.failure.error
    }
  }

  private async handle(from: number, message: CopyWorkerMessage): Promise<void> {
    switch (message.type) {
      case 'ready':
        return
      case 'text':
        return this.append(message.text)
      case 'checkpoint':
        // Once the run is failing, a worker that comes to a checkpoint stops there.
        if (this.failure !== undefined) this.answer(from, VERDICT.stop)
        else this.parked.add(from)
        return
      case 'done':
      case 'stopped':
        this.finished.add(from)
        this.reusable.add(from)
        return
      case 'error': {
        this.finished.add(from)
        this.reusable.add(from)
        const error = message.runError ? new TaskRunError(message.message) : new Error(message.message)
        if (this.failure === undefined) {
          // The others finish their current object and stop; this line is completed by the run's ERROR:.
          this.fail(message.open, error)
        } else if (message.open.length > 0) {
          // Another failure meanwhile: its line is completed here, the run reports the first.
          await this.append(message.open + errorLine(message.message))
        }
      }
    }
  }

  /** A worker failed or exited without its last word: like an error there (its lines so far are kept). */
  private lost(from: number, err: Error): void {
    this.reusable.delete(from)
    if (this.finished.has(from)) return // exited after its last word
    this.finished.add(from)
    this.parked.delete(from)
    if (this.failure === undefined) this.fail('', new Error(`The copy worker stopped unexpectedly (${err.message}); start the task again.`))
  }

  private fail(open: string, error: Error): void {
    this.failure = { open, error }
    this.stopAll()
    this.parked.clear()
  }

  private async checkpoint(): Promise<void> {
    // Cleared first: a signal arriving from here on calls the workers back at their next checkpoint.
    Atomics.store(this.control, CONTROL.attention, 0)
    try {
      await this.ctx.checkpoint()
    } catch (err) {
      for (const worker of this.parked) this.answer(worker, VERDICT.stop)
      throw err
    }
    for (const worker of this.parked) this.answer(worker, VERDICT.go)
    this.parked.clear()
  }

  private async drainAll(): Promise<void> {
    this.drainedAt = performance.now()
    await this.append(this.rings.map((ring) => ring.take()).join(''))
  }

  private async append(text: string): Promise<void> {
    if (text.length > 0) await this.ctx.log.append(text)
  }

  private answer(worker: number, verdict: number): void {
    Atomics.store(this.control, CONTROL.verdict + worker, verdict)
    Atomics.notify(this.control, CONTROL.verdict + worker)
  }

  /** Every worker to stop at its next checkpoint (and its walk at once); none left waiting. */
  private stopAll(): void {
    Atomics.store(this.control, CONTROL.canceled, 1)
    Atomics.store(this.control, CONTROL.attention, 1)
    for (let i = 0; i < this.count; i++) this.answer(i, VERDICT.stop)
  }

  /**
   * Stop the workers — at their next checkpoint (their temporary files
   * removed), waiting a grace period at most — then keep those fit for the
   * next run and end the others.
   */
  async close(): Promise<void> {
    this.stopAll()
    const deadline = performance.now() + STOP_GRACE_MS
    while (this.jobsSent && this.finished.size < this.count) {
      const event = await this.inbox.next(Math.max(0, deadline - performance.now()))
      if (event === undefined) break
      if ('failure' in event) this.lost(event.from, event.failure)
      else if (event.message.type === 'checkpoint') this.answer(event.from, VERDICT.stop) // came as the run ended
      else if (event.message.type === 'done' || event.message.type === 'stopped' || event.message.type === 'error') {
        this.finished.add(event.from)
        this.reusable.add(event.from)
      }
    }
    this.workers.forEach((worker, index) => {
      this.detach[index]!()
      // Before the job: a ready worker is fine. After it: only one that finished it properly.
      const fit = this.jobsSent ? this.reusable.has(index) : this.ready.has(index)
      if (fit) giveBackCopyWorker(worker)
      else void worker.terminate().catch(() => undefined)
    })
  }
}

/** How long a worker may take to reach its next checkpoint when the run ends early. */
const STOP_GRACE_MS = 5000
/** How often the workers' lines are taken from their rings into the log (ms). */
const DRAIN_MS = 20

type InboxEvent = { from: number; message: CopyWorkerMessage } | { from: number; failure: Error }

/** The workers' messages in arrival order, with their failures and exits. */
class Inbox {
  private readonly queue: InboxEvent[] = []
  private waiting: ((event: InboxEvent | undefined) => void) | undefined

  /** Listen to `worker` (its messages, failure and exit) until the returned function is called. */
  attach(worker: Worker, from: number): () => void {
    const onMessage = (message: CopyWorkerMessage) => this.push({ from, message })
    const onError = (err: Error) => this.push({ from, failure: err })
    const onExit = (code: number) => this.push({ from, failure: new Error(`it exited with code ${code}`) })
    worker.on('message', onMessage)
    worker.on('error', onError)
    worker.on('exit', onExit)
    return () => {
      worker.off('message', onMessage)
      worker.off('error', onError)
      worker.off('exit', onExit)
    }
  }

  private push(event: InboxEvent): void {
    const w = this.waiting
    this.waiting = undefined
    if (w !== undefined) w(event)
    else this.queue.push(event)
  }

  /** The next event; `undefined` when none came within `timeoutMs` (if given). */
  next(timeoutMs?: number): Promise<InboxEvent | undefined> {
    const queued = this.queue.shift()
    if (queued !== undefined) return Promise.resolve(queued)
    return new Promise((resolve) => {
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
        this.waiting = undefined
        resolve(undefined)
      }, timeoutMs)
      this.waiting = (event) => {
        clearTimeout(timer)
        resolve(event)
      }
    })
  }
}
