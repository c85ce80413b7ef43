/**
 * A copy worker thread: runs the loop of a copy task whose three stores are
 * filesystem stores (spec §5.4) with blocking file calls, so that a copy
 * costs no thread-pool round trips and no hand-over between threads per
 * object, and keeps the main event loop free for requests. Several workers
 * may share one run, each walking its share of the query store (pattern
 * sets only; see copy-offload.ts).
 *
 * The main thread keeps the run (states, log, pause/resume/cancel): a worker
 * leaves whole log lines in a ring in shared memory (log-ring.ts), which the
 * main thread empties every few milliseconds — no message per object — and
 * comes to it for every checkpoint that has a signal pending. Checkpoints
 * sit exactly where the in-process loop has them, between objects; when no
 * signal is pending a checkpoint is a read of shared memory. A thread takes
 * one job after another (it is kept between runs, see copy-pool.ts); started
 * by `startCopyWorker`, importing this module anywhere else does nothing.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads'
import { enumerateShare, filesystemConnector } from '../stores/filesystem.js'
import type { FilesystemConnectorOptions, Share } from '../stores/filesystem.js'
import { adoptTempIncarnation } from '../stores/filesystem-layout.js'
import type { ObjectSetSpec } from '../stores/types.js'
import { copyObject } from './copy-object.js'
import type { CopyFlags } from './copy-object.js'
import { copyingPrefix } from './log-format.js'
import { LogRing } from './log-ring.js'
import { TaskRunError } from './runner.js'

/**
 * Marks the worker data of a copy worker.
 *
 * @example
 * new Worker(url, { workerData: { kind: COPY_WORKER } })
 */
export const COPY_WORKER = 'cloudsync-copy-worker'

/**
 * Slots of the shared control array (an `Int32Array` over `control`, of
 * length {@link controlLength}); worker `i` reads its verdict at
 * `CONTROL.verdict + i`.
 *
 * @example
 * Atomics.store(control, CONTROL.attention, 1) // come to a checkpoint
 */
export const CONTROL = {
  /** Non-zero: a signal is pending; come to a checkpoint. Set by the main thread. */
  attention: 0,
  /** Non-zero: the run is ending (canceled, or another worker failed); stop enumerating at once [D28]. */
  canceled: 1,
  /** The first worker's answer to its checkpoint: see VERDICT. */
  verdict: 2,
} as const

/**
 * The main thread's answers in a worker's verdict slot.
 *
 * @example
 * Atomics.store(control, CONTROL.verdict + i, VERDICT.go)
 * Atomics.notify(control, CONTROL.verdict + i)
 */
export const VERDICT = { waiting: 0, go: 1, stop: 2 } as const

/**
 * Length of the control array for `workers` workers.
 *
 * @example
 * new Int32Array(new SharedArrayBuffer(controlLength(2) * Int32Array.BYTES_PER_ELEMENT))
 */
export function controlLength(workers: number): number {
  return CONTROL.verdict + workers
}

/** One copy job, sent to a worker as `{ type: 'job', job }`. */
export interface CopyWorkerData {
  query: Required<FilesystemConnectorOptions>
  source: Required<FilesystemConnectorOptions>
  dest: Required<FilesystemConnectorOptions>
  set: ObjectSetSpec
  flags: CopyFlags
  tempIncarnation: string
  /** An Int32Array's buffer, indexed by CONTROL. */
  control: SharedArrayBuffer
  /** This worker's log lines: a LogRing's buffer. */
  log: SharedArrayBuffer
  /** This worker's share of a pattern walk (`index` also picks its verdict slot); count 1: the whole set. */
  share: Share
}

/**
 * Worker → main thread: `ready` once loaded, then for each job its messages.
 * Every message comes after the lines the worker left in its log ring before
 * it: the main thread takes those first. `text` is a line too long for the
 * ring; `open` the `Copying <pid>..` of an object that failed (its line to be
 * completed by the run's `ERROR:`). `done`, `stopped` and `error` are a job's
 * last word; the thread then waits for the next job.
 */
export type CopyWorkerMessage =
  | { type: 'ready' }
  | { type: 'text'; text: string }
  | { type: 'checkpoint' }
  | { type: 'done' }
  | { type: 'stopped' }
  | { type: 'error'; open: string; message: string; runError: boolean }

const STOPPED = Symbol('stopped')

const port = parentPort
if (!isMainThread && port !== null && (workerData as { kind?: unknown } | null)?.kind === COPY_WORKER) {
  const post = (message: CopyWorkerMessage) => port.postMessage(message)
  let busy = false
  port.on('message', (message: { type?: unknown; job?: CopyWorkerData }) => {
    if (message?.type !== 'job' || message.job === undefined || busy) return
    busy = true
    void run(message.job, post).finally(() => (busy = false))
  })
  post({ type: 'ready' })
}

async function run(data: CopyWorkerData, post: (message: CopyWorkerMessage) => void): Promise<void> {
  const control = new Int32Array(data.control)
  const verdictSlot = CONTROL.verdict + data.share.index
  // The walk only reads `aborted`: a view of the shared cancel flag.
  const canceled = { get aborted() { return Atomics.load(control, CONTROL.canceled) !== 0 } } as AbortSignal
  // The start of the line of the object in progress.
  let open = ''
  const checkpoint = (): void => {
    if (Atomics.load(control, CONTROL.attention) === 0) return
    if (Atomics.load(control, CONTROL.canceled) !== 0) throw STOPPED // final: nothing to ask
    Atomics.store(control, verdictSlot, VERDICT.waiting)
    post({ type: 'checkpoint' })
    Atomics.wait(control, verdictSlot, VERDICT.waiting)
    if (Atomics.load(control, verdictSlot) === VERDICT.stop) throw STOPPED
  }

  try {
    adoptTempIncarnation(data.tempIncarnation)
    const ring = new LogRing(data.log)
    const query = filesystemConnector({ ...data.query, blocking: true })
    const source = filesystemConnector({ ...data.source, blocking: true })
    const dest = filesystemConnector({ ...data.dest, blocking: true })
    const pids = data.set.type === 'pidPattern' && data.share.count > 1 ? enumerateShare(query, data.set.pattern, canceled, data.share) : query.enumerate(data.set, canceled)
    for await (const pid of pids) {
      if (canceled.aborted) break
      checkpoint()
      open = copyingPrefix(pid)
      const line = open + (await copyObject(pid, source, dest, data.flags)) + '\n'
      open = ''
      if (!ring.write(line)) post({ type: 'text', text: line })
      checkpoint()
    }
    post({ type: 'done' })
  } catch (err) {
    if (err === STOPPED) post({ type: 'stopped' })
    else post({ type: 'error', open, message: err instanceof Error ? err.message : String(err), runError: err instanceof TaskRunError })
  }
}
