/**
 * Copy worker threads kept between runs. A new thread pays for loading its
 * modules and, above all, for compiling its hot code again (the optimizing
 * compiler's work for a copy is several hundred milliseconds of processor
 * time); a thread that has copied before is ready at once, its code already
 * compiled. Idle threads do not keep the process alive, and go after a
 * minute without work.
 */
import { Worker } from 'node:worker_threads'
import { COPY_WORKER } from './copy-worker.js'

// The worker's module next to this one (.ts when run from source by a TypeScript loader).
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './copy-worker.ts' : './copy-worker.js', import.meta.url)

/** Idle threads kept at most. */
const POOL_MAX = 4
/** How long a thread may stay idle before it is ended (ms). */
const IDLE_MS = 60_000

const idle: Worker[] = []
const idleTimers = new WeakMap<Worker, NodeJS.Timeout>()

/**
 * An idle copy worker thread (ready for a job at once), or undefined.
 *
 * @example
 * const worker = takeCopyWorker() ?? startCopyWorker()
 */
export function takeCopyWorker(): Worker | undefined {
  const worker = idle.pop()
  if (worker === undefined) return undefined
  clearTimeout(idleTimers.get(worker))
  worker.ref()
  return worker
}

/**
 * A new copy worker thread; it posts `{ type: 'ready' }` once it can take a
 * job. Throws when a thread cannot be made.
 *
 * @example
 * const worker = startCopyWorker()
 * worker.once('message', () => worker.postMessage({ type: 'job', job }))
 */
export function startCopyWorker(): Worker {
  const worker = new Worker(WORKER_URL, { workerData: { kind: COPY_WORKER } })
  // Gone while idle (it should not be): forget it.
  worker.once('exit', () => forget(worker))
  return worker
}

/**
 * Keep a worker that has finished its job (and has no listeners of the run
 * left) for the next run; ends it when enough are kept already.
 *
 * @example
 * giveBackCopyWorker(worker)
 */
export function giveBackCopyWorker(worker: Worker): void {
  if (idle.length >= POOL_MAX) {
    void worker.terminate().catch(() => undefined)
    return
  }
  worker.unref()
  idleTimers.set(
    worker,
    setTimeout(() => {
      forget(worker)
      void worker.terminate().catch(() => undefined)
    }, IDLE_MS).unref(),
  )
  idle.push(worker)
}

/**
 * The number of idle copy worker threads (for diagnostics and tests).
 *
 * @example
 * idleCopyWorkers() // 2 after a copy by two threads
 */
export function idleCopyWorkers(): number {
  return idle.length
}

function forget(worker: Worker): void {
  const at = idle.indexOf(worker)
  if (at !== -1) idle.splice(at, 1)
  clearTimeout(idleTimers.get(worker))
}
