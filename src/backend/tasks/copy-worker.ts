/**
 * The copy worker thread: runs the loop of a copy task whose three stores
 * are filesystem stores (spec §5.4) with blocking file calls, so that a copy
 * costs no thread-pool round trips and no hand-over between threads per
 * object, and keeps the main event loop free for requests.
 *
 * The main thread keeps the run (states, log, pause/resume/cancel): the
 * worker sends it the log text in batches and comes to it for every
 * checkpoint that has a signal pending. Checkpoints sit exactly where the
 * in-process loop has them, between objects; when no signal is pending a
 * checkpoint is a read of shared memory. Started by `runCopyInWorker`
 * (copy-offload.ts); importing this module anywhere else does nothing.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads'
import { filesystemConnector } from '../stores/filesystem.js'
import type { FilesystemConnectorOptions } from '../stores/filesystem.js'
import { adoptTempIncarnation } from '../stores/filesystem-layout.js'
import type { ObjectSetSpec } from '../stores/types.js'
import { copyObject } from './copy-object.js'
import type { CopyFlags } from './copy-object.js'
import { copyingPrefix } from './log-format.js'
import { TaskRunError } from './runner.js'

/**
 * Marks the worker data of a copy worker.
 *
 * @example
 * new Worker(url, { workerData: { kind: COPY_WORKER, ... } })
 */
export const COPY_WORKER = 'cloudsync-copy-worker'

/**
 * Slots of the shared control array (an `Int32Array` over `control`).
 *
 * @example
 * Atomics.store(control, CONTROL.attention, 1) // come to a checkpoint
 */
export const CONTROL = {
  /** Non-zero: a signal is pending; come to a checkpoint. Set by the main thread. */
  attention: 0,
  /** The main thread's answer to a checkpoint: see VERDICT. */
  verdict: 1,
  /** Non-zero: the run is canceled; stop enumerating at once [D28]. */
  canceled: 2,
} as const
/**
 * The main thread's answers in `CONTROL.verdict`.
 *
 * @example
 * Atomics.store(control, CONTROL.verdict, VERDICT.go)
 * Atomics.notify(control, CONTROL.verdict)
 */
export const VERDICT = { waiting: 0, go: 1, stop: 2 } as const

export interface CopyWorkerData {
  kind: typeof COPY_WORKER
  query: Required<FilesystemConnectorOptions>
  source: Required<FilesystemConnectorOptions>
  dest: Required<FilesystemConnectorOptions>
  set: ObjectSetSpec
  flags: CopyFlags
  tempIncarnation: string
  /** An Int32Array's buffer, indexed by CONTROL. */
  control: SharedArrayBuffer
}

/** Worker → main thread. Every message carries log text to append first. */
export type CopyWorkerMessage =
  | { type: 'ready' }
  | { type: 'text'; text: string }
  | { type: 'checkpoint'; text: string }
  | { type: 'done'; text: string }
  | { type: 'stopped'; text: string }
  | { type: 'error'; text: string; message: string; runError: boolean }

const STOPPED = Symbol('stopped')

const data = workerData as Partial<CopyWorkerData> | undefined
const port = parentPort
if (!isMainThread && port !== null && data?.kind === COPY_WORKER) {
  void run(data as CopyWorkerData, (message: CopyWorkerMessage) => port.postMessage(message))
}

async function run(data: CopyWorkerData, post: (message: CopyWorkerMessage) => void): Promise<void> {
  adoptTempIncarnation(data.tempIncarnation)
  const control = new Int32Array(data.control)
  const query = filesystemConnector({ ...data.query, blocking: true })
  const source = filesystemConnector({ ...data.source, blocking: true })
  const dest = filesystemConnector({ ...data.dest, blocking: true })
  // The walk only reads `aborted`: a view of the shared cancel flag.
  const canceled = { get aborted() { return Atomics.load(control, CONTROL.canceled) !== 0 } } as AbortSignal

  // Text not yet sent (the end of a line whose start was sent, in case of an error).
  let text = ''
  const take = (): string => {
    const out = text
    text = ''
    return out
  }
  const checkpoint = (): void => {
    if (Atomics.load(control, CONTROL.attention) === 0) return
    if (Atomics.load(control, CONTROL.canceled) !== 0) throw STOPPED // final: nothing to ask
    Atomics.store(control, CONTROL.verdict, VERDICT.waiting)
    post({ type: 'checkpoint', text: take() })
    Atomics.wait(control, CONTROL.verdict, VERDICT.waiting)
    if (Atomics.load(control, CONTROL.verdict) === VERDICT.stop) throw STOPPED
  }

  post({ type: 'ready' })
  try {
    for await (const pid of query.enumerate(data.set, canceled)) {
      if (canceled.aborted) break
      checkpoint()
      // Sent as it happens (the main thread writes what has arrived in one
      // go): a slow object shows its `Copying <pid>..` while it is copied,
      // and a line is never held up by a slow object or a long walk after it.
      post({ type: 'text', text: copyingPrefix(pid) })
      text = (await copyObject(pid, source, dest, data.flags)) + '\n'
      post({ type: 'text', text: take() })
      checkpoint()
    }
    post({ type: 'done', text: take() })
  } catch (err) {
    if (err === STOPPED) post({ type: 'stopped', text: take() })
    else post({ type: 'error', text: take(), message: err instanceof Error ? err.message : String(err), runError: err instanceof TaskRunError })
  }
}
