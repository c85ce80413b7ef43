/**
 * One run of one task: checkpoints, pause/resume/cancel, and the end of run
 * (CloudSync spec §5.2).
 *
 * The manager creates the log, records it and sets the task `Running`
 * before it calls {@link TaskRunner.run} [D25]; the runner owns the task's
 * state from then until it sets it `Idle`. Signals are "latest wins" and are
 * observed at the next checkpoint [D37]; cancel also aborts the enumeration
 * in progress, so a canceled walk stops at once [D28].
 */
import type { Backend, ResultType, TaskRecord, TaskState } from '../types.js'
import { connectorFor } from '../stores/types.js'
import type { ConnectorOptions, ObjectStoreConnector } from '../stores/types.js'
import { LogContent, errorLine, finishedLine, pausedLine, resumedLine } from './log-format.js'
import type { RunResult } from './log-format.js'
import { parseTaskData } from './task-data.js'
import type { TaskData } from './task-data.js'
import type { ObjectSetRecord } from '../types.js'

/** What the manager asks of a runner. */
export type RunSignal = 'pause' | 'resume' | 'cancel'

/** What a task body (list, copy, or a custom one) gets to work with. */
export interface RunContext {
  readonly backend: Backend
  /** The task as it was when the run started. */
  readonly task: TaskRecord
  /** The run's log content; `# Started at` is already written. */
  readonly log: LogContent
  /** Aborted when the run is canceled: pass it to long enumerations. */
  readonly signal: AbortSignal
  /** Options for this run's store connectors, `signal` included. */
  readonly storeOptions: ConnectorOptions
  /**
   * Whether the body may do its work in a worker thread (the manager's
   * `workerThreads`; absent = yes). A copy that runs in worker threads calls
   * `checkpoint()` once before its first object and then only when a signal
   * is pending: a wrapper whose checkpoint must run between all objects sets
   * this to false.
   */
  readonly workerThreads?: boolean
  /**
   * Worker threads for one copy of a `pidPattern` set between filesystem
   * stores (the manager's `copyThreads`; absent = one per core, at most two).
   */
  readonly copyThreads?: number
  /**
   * Observe signals: returns at once when none is pending, waits while
   * paused, and throws (ending the run as `Canceled`) on cancel. Call it
   * between log lines, never inside one [D29].
   */
  checkpoint(): Promise<void>
  /**
   * Be told at once when a signal arrives (before the next checkpoint acts
   * on it), e.g. to ask work running elsewhere to come to a checkpoint.
   * Returns a function that removes the listener.
   */
  onSignal?(listener: (signal: RunSignal) => void): () => void
}

/** The body of a run (spec §5.3 / §5.4). Rejecting fails the run. */
export type RunBody = (ctx: RunContext) => Promise<void>

export interface TaskRunnerOptions {
  backend: Backend
  task: TaskRecord
  /** The run's log id (already recorded as the task's active log). */
  logId: number
  /** The run's open log content, with `# Started at` written. */
  log: LogContent
  body: RunBody
  storeOptions?: ConnectorOptions
  /** Let the body work in a worker thread. Default true. */
  workerThreads?: boolean
  /** Worker threads for one copy of a pattern set. Default: one per core, at most two. */
  copyThreads?: number
  /** While paused, re-read the task state at least this often (ms). Default 5000. */
  recheckMs?: number
  /** System log for problems that cannot go into the task log. */
  report?: (message: string) => void
}

// Thrown through the body to unwind a canceled run; never escapes run().
const CANCELED = Symbol('canceled')

const RESULT_TYPE: Record<RunResult, Exclude<ResultType, 'Incomplete'>> = {
  succeeded: 'Succeeded',
  failed: 'Failed',
  canceled: 'Canceled',
}

/**
 * Runs one task once. Create it, call {@link run} once, and deliver signals
 * with {@link signal} meanwhile.
 *
 * @example
 * const runner = new TaskRunner({ backend, task, logId, log, body: runList })
 * const done = runner.run()
 * runner.signal('pause')
 * await done // 'succeeded' | 'failed' | 'canceled'
 */
export class TaskRunner {
  readonly taskId: number
  private readonly options: TaskRunnerOptions
  private readonly abort = new AbortController()
  private pending: RunSignal | undefined
  private isPaused = false
  private wakeup: (() => void) | undefined
  private started = false
  private readonly listeners = new Set<(signal: RunSignal) => void>()

  constructor(options: TaskRunnerOptions) {
    this.options = options
    this.taskId = options.task.id
  }

  /** True from the moment a pause is taken until the run resumes or ends. */
  get paused(): boolean {
    return this.isPaused
  }

  /** Deliver a signal; the latest one wins, repeating one is harmless. */
  signal(signal: RunSignal): void {
    if (this.pending === 'cancel') return // nothing follows a cancel
    this.pending = signal
    if (signal === 'cancel') this.abort.abort()
    const wake = this.wakeup
    this.wakeup = undefined
    wake?.()
    for (const listener of this.listeners) {
      try {
        listener(signal)
      } catch (err) {
        this.report('a signal listener failed', err)
      }
    }
  }

  /** Run to the end; resolves with the result once the task is `Idle` again (rejects only when called twice). */
  async run(): Promise<RunResult> {
    if (this.started) throw new Error('TaskRunner.run() may be called once')
    this.started = true
    const { backend, task, log, body, storeOptions = {}, workerThreads = true, copyThreads } = this.options
    const ctx: RunContext = {
      backend,
      task,
      log,
      signal: this.abort.signal,
      // Remote stores stop waiting (retries, transfers) when the run is canceled.
      storeOptions: { ...storeOptions, signal: this.abort.signal },
      workerThreads,
      ...(copyThreads === undefined ? {} : { copyThreads }),
      checkpoint: () => this.checkpoint(),
      onSignal: (listener) => {
        this.listeners.add(listener)
        return () => void this.listeners.delete(listener)
      },
    }
    let result: RunResult
    let error: unknown
    try {
      await this.checkpoint()
      await body(ctx)
      await this.checkpoint()
      result = 'succeeded'
    } catch (err) {
      if (err === CANCELED || (this.pending === 'cancel' && isAbortError(err))) {
        result = 'canceled'
      } else {
        result = 'failed'
        error = err
      }
    }
    await this.finish(result, error)
    return result
  }

  private async checkpoint(): Promise<void> {
    const s = this.pending
    if (s === 'cancel') throw CANCELED
    if (s === undefined) return
    this.pending = undefined
    // A resume without a pause needs nothing: the manager sets `Running` [D27].
    if (s === 'pause') await this.pause()
  }

  private async pause(): Promise<void> {
    const { log } = this.options
    this.isPaused = true
    try {
      if (!(await this.setState('Paused', 'Pausing'))) {
        // The client moved on before we could pause: follow the stored state.
        const state = (await this.options.backend.getTask(this.taskId))?.state
        if (state === undefined || state === 'Idle' || state === 'Canceling') throw CANCELED
        if (state === 'Running') return
        if (state === 'Resuming' && (await this.setState('Running', 'Resuming'))) return
      }
      await log.line(pausedLine(new Date()), { ownLine: true })
      for (;;) {
        const s = this.pending
        if (s === 'cancel') throw CANCELED
        this.pending = undefined
        if (s === 'resume') {
          // Lost race (e.g. paused again meanwhile): stay paused, the state decides next.
          if (!(await this.setState('Running', 'Resuming'))) continue
          await log.line(resumedLine(new Date()), { ownLine: true })
          return
        }
        if (s === 'pause') {
          await this.setState('Paused', 'Pausing')
          continue
        }
        if (!(await this.waitForSignal()) && (await this.pollState())) return
      }
    } finally {
      this.isPaused = false
    }
  }

  /** Wait for a signal or the re-check interval; true when signalled. */
  private waitForSignal(): Promise<boolean> {
    const ms = this.options.recheckMs ?? 5000
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wakeup = undefined
        resolve(false)
      }, ms)
      this.wakeup = () => {
        clearTimeout(timer)
        resolve(true)
      }
    })
  }

  /**
   * While paused, read the stored state so that a missed signal is not
   * fatal. True when the task was already set `Running` elsewhere.
   */
  private async pollState(): Promise<boolean> {
    const task = await this.options.backend.getTask(this.taskId)
    if (this.pending !== undefined) return false // a signal arrived meanwhile: it is newer
    const state = task?.state
    if (state === undefined || state === 'Idle' || state === 'Canceling') this.pending = 'cancel'
    else if (state === 'Resuming') this.pending = 'resume'
    else if (state === 'Pausing') this.pending = 'pause'
    else if (state === 'Running') {
      // Resumed elsewhere: log it and continue.
      await this.options.log.line(resumedLine(new Date()), { ownLine: true })
      return true
    }
    return false
  }

  /** Conditional state change; false when the state was no longer `from`. */
  private async setState(to: TaskState, from: TaskState): Promise<boolean> {
    try {
      await this.options.backend.updateTask(this.taskId, { state: to }, from)
      return true
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code === 'state_changed') return false
      throw err
    }
  }

  /** End of run, in the order of spec §5.2. Never throws. */
  private async finish(result: RunResult, error: unknown): Promise<void> {
    const { backend, log, logId } = this.options
    const now = new Date()
    try {
      if (result === 'failed') await log.line(errorLine(messageOf(error)))
      await log.line(finishedLine(result, now), { ownLine: true })
    } catch (err) {
      this.report(`could not write the end of log ${logId}`, err)
    }
    try {
      await log.close()
    } catch (err) {
      this.report(`could not close log ${logId}`, err)
    }
    try {
      await backend.finishTaskLog(logId, RESULT_TYPE[result], now.getTime())
    } catch (err) {
      this.report(`could not finish log ${logId}`, err)
    }
    try {
      await backend.updateTask(this.taskId, { state: 'Idle', activeLogId: null })
    } catch (err) {
      this.report('could not set the task Idle', err)
    }
    if (result === 'failed' && !(error instanceof TaskRunError)) this.report('run failed', error)
  }

  private report(what: string, err: unknown): void {
    // Stacks only for programming errors; store failures explain themselves.
    const detail = isBug(err) ? ((err as Error).stack ?? String(err)) : messageOf(err)
    this.options.report?.(`Task ${this.taskId}: ${what}: ${detail}`)
  }
}

function isBug(err: unknown): boolean {
  return err instanceof TypeError || err instanceof ReferenceError || err instanceof RangeError || err instanceof SyntaxError || !(err instanceof Error)
}

function isAbortError(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError'
}

/** The sentence for an `ERROR:` line. */
function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}

/**
 * An expected failure of a run (bad data, missing entity, unusable store):
 * its message goes to the task log, and it is not reported as a server fault.
 *
 * @example
 * throw new TaskRunError('Object set 3 no longer exists; edit the task.')
 */
export class TaskRunError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'TaskRunError'
  }
}

/**
 * The task's parsed data, checked against the expected type.
 *
 * @example
 * const data = taskDataOf(ctx.task, 'list') // { type: 'list', setId, storeId }
 */
export function taskDataOf<T extends TaskData['type']>(task: TaskRecord, type: T): Extract<TaskData, { type: T }> {
  const parsed = parseTaskData(task.type, task.data)
  if (!parsed.ok) throw new TaskRunError(`${parsed.message} Edit the task and start it again.`)
  if (parsed.data.type !== type) throw new TaskRunError(`This runner runs ${type} tasks, not ${parsed.data.type} tasks.`)
  return parsed.data as Extract<TaskData, { type: T }>
}

/**
 * The object set a task references; fails the run when it no longer exists.
 *
 * @example
 * const set = await objectSetOf(ctx.backend, data.setId)
 */
export async function objectSetOf(backend: Backend, id: number): Promise<ObjectSetRecord> {
  const set = await backend.getObjectSet(id)
  if (set === undefined) throw new TaskRunError(`Object set ${id} does not exist; edit the task to use another set.`)
  return set
}

/**
 * A connector for the object store a task references; fails the run when the
 * store no longer exists or cannot be used by this server.
 *
 * @example
 * const store = await connectorOf(ctx.backend, data.storeId, ctx.storeOptions)
 */
export async function connectorOf(backend: Backend, id: number, options: ConnectorOptions): Promise<ObjectStoreConnector> {
  const record = await backend.getObjectStore(id)
  if (record === undefined) throw new TaskRunError(`Object store ${id} does not exist; edit the task to use another store.`)
  try {
    return connectorFor(record, options)
  } catch (err) {
    throw new TaskRunError(messageOf(err), { cause: err })
  }
}
