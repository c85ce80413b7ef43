/**
 * The task manager (CloudSync spec §5.1, §5.8): one background loop that
 * starts tasks, relays pause/resume/cancel to their runners, and keeps every
 * task's state consistent with what is really running.
 *
 * It talks to storage only through the {@link Backend} interface, so it runs
 * over any backend. Every state change it makes is conditional on the state
 * it saw, so a client PATCH racing with it loses cleanly (409) instead of
 * leaving a task stuck [D38].
 */
import type { Backend, TaskRecord, TaskState, TaskType } from '../types.js'
import type { ConnectorOptions } from '../stores/types.js'
import { runCopy } from './copy-runner.js'
import { runList } from './list-runner.js'
import { LogContent, errorLine, finishedLine, startedLine } from './log-format.js'
import type { RunResult } from './log-format.js'
import { TaskRunner } from './runner.js'
import type { RunBody } from './runner.js'

export interface TaskManagerOptions {
  /** Examine every task at least this often (ms). Default 5000 (spec §5.1). */
  intervalMs?: number
  /** Options for store connectors (see `ConnectorOptions`). */
  storeOptions?: ConnectorOptions
  /**
   * Flush copied files to stable storage (fsync) so that they survive a power
   * loss; shorthand for `storeOptions.durable`. Default false: a killed
   * server never leaves partial objects either way, and flushing makes
   * copies several times slower.
   */
  durable?: boolean
  /**
   * Run copy tasks between filesystem stores in a worker thread (blocking
   * file calls there are several times faster, and the event loop stays
   * free for requests). Default true.
   */
  workerThreads?: boolean
  /**
   * Worker threads that walk and copy one `pidPattern` set between
   * filesystem stores together (a `pidList` set is copied by one, in list
   * order). Default: one per core, at most two.
   */
  copyThreads?: number
  /** System log (start-up recovery, failures that cannot go into a task log). Default: `console.warn`. */
  log?: (message: string) => void
  /** Run bodies by task type; defaults to the built-in list and copy runners. */
  runners?: Partial<Record<TaskType, RunBody>>
}

const DEFAULT_INTERVAL_MS = 5000

/**
 * Runs CloudSync tasks stored in a {@link Backend}.
 *
 * @example
 * const manager = new TaskManager(backend)
 * await manager.start()           // start-up recovery, then the loop
 * // after a task POST/PATCH that changed a state:
 * manager.wake()
 * // on close:
 * await manager.shutdown()        // cancels running tasks and waits for them
 */
export class TaskManager {
  private readonly backend: Backend
  private readonly intervalMs: number
  private readonly storeOptions: ConnectorOptions
  private readonly workerThreads: boolean
  private readonly copyThreads: number | undefined
  private readonly log: (message: string) => void
  private readonly bodies: Record<TaskType, RunBody>
  private readonly runners = new Map<number, { runner: TaskRunner; done: Promise<void> }>()
  private phase: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new'
  private timer: NodeJS.Timeout | undefined
  private ticking: Promise<void> | undefined
  private again = false
  private starting: Promise<void> | undefined
  private stopping: Promise<void> | undefined

  constructor(backend: Backend, options: TaskManagerOptions = {}) {
    if (backend === null || typeof backend !== 'object' || typeof backend.listTasks !== 'function') {
      throw new TypeError('TaskManager: "backend" must implement the Backend interface')
    }
    const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS
    if (typeof intervalMs !== 'number' || !Number.isFinite(intervalMs) || intervalMs <= 0) {
      throw new TypeError('TaskManager: option "intervalMs" must be a positive number of milliseconds')
    }
    if (options.log !== undefined && typeof options.log !== 'function') {
      throw new TypeError('TaskManager: option "log" must be a function')
    }
    for (const [type, body] of Object.entries(options.runners ?? {})) {
      if (typeof body !== 'function') throw new TypeError(`TaskManager: option "runners.${type}" must be a function`)
    }
    this.backend = backend
    this.intervalMs = intervalMs
    if (options.durable !== undefined && typeof options.durable !== 'boolean') {
      throw new TypeError('TaskManager: option "durable" must be a boolean')
    }
    if (options.storeOptions !== undefined && (options.storeOptions === null || typeof options.storeOptions !== 'object')) {
      throw new TypeError('TaskManager: option "storeOptions" must be an object')
    }
    if (options.workerThreads !== undefined && typeof options.workerThreads !== 'boolean') {
      throw new TypeError('TaskManager: option "workerThreads" must be a boolean')
    }
    if (options.copyThreads !== undefined && !(Number.isInteger(options.copyThreads) && options.copyThreads >= 1)) {
      throw new TypeError('TaskManager: option "copyThreads" must be a positive integer')
    }
    this.workerThreads = options.workerThreads ?? true
    this.copyThreads = options.copyThreads
    this.storeOptions = { ...options.storeOptions }
    if (options.durable !== undefined && this.storeOptions.durable === undefined) this.storeOptions.durable = options.durable
    this.log = options.log ?? ((message) => console.warn(`cloudsync task manager: ${message}`))
    this.bodies = { list: runList, copy: runCopy, ...options.runners }
  }

  /** Start-up recovery (spec §5.8), then the loop. Resolves once the loop runs. */
  start(): Promise<void> {
    if (this.phase !== 'new') return this.starting ?? Promise.reject(new Error('TaskManager: already stopped'))
    this.phase = 'starting'
    this.starting = (async () => {
      await this.recover()
      if (this.phase !== 'starting') return // shut down during recovery
      this.phase = 'running'
      this.schedule(0)
    })()
    return this.starting
  }

  /** Examine the tasks soon (call after a task POST or state PATCH); returns at once. */
  wake(): void {
    if (this.phase !== 'running') return
    if (this.ticking !== undefined) {
      this.again = true
      return
    }
    this.schedule(0)
  }

  /**
   * Examine every task now and resolve when that pass is done (after any
   * pass in progress). Useful when the caller must know that a state change
   * has been acted on, e.g. in tests.
   */
  examineNow(): Promise<void> {
    if (this.phase !== 'running') return Promise.resolve()
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    return this.runTick()
  }

  /**
   * Graceful shutdown (spec §5.8): stop the loop, cancel every active task,
   * idle those without a runner at once, and wait until all runs have ended.
   */
  shutdown(): Promise<void> {
    this.stopping ??= this.stop()
    return this.stopping
  }

  /** Number of runs in progress. */
  get activeRuns(): number {
    return this.runners.size
  }

  // ---- the loop ----

  private schedule(ms: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.runTick()
    }, ms)
    // An idle engine must not keep the host process alive; pending work and
    // active runs (which need their signals relayed) must.
    if (ms > 0 && this.runners.size === 0) this.timer.unref()
  }

  /** One pass over the tasks, after any pass in progress; then the next is scheduled. */
  private runTick(): Promise<void> {
    const pass: Promise<void> = (this.ticking ?? Promise.resolve())
      .then(() => (this.phase === 'running' ? this.tick() : undefined))
      .finally(() => {
        if (this.ticking !== pass) return // a later pass is queued and will schedule
        this.ticking = undefined
        if (this.phase !== 'running') return
        const soon = this.again
        this.again = false
        this.schedule(soon ? 0 : this.intervalMs)
      })
    this.ticking = pass
    return pass
  }

  private async tick(): Promise<void> {
    let tasks: TaskRecord[]
    try {
      tasks = await this.backend.listTasks()
    } catch (err) {
      this.log(`could not list tasks: ${messageOf(err)}`)
      return
    }
    for (const task of tasks) {
      if (this.phase !== 'running') return
      if (task.state === 'Idle') continue
      try {
        await this.examine(task)
      } catch (err) {
        // One task's failure must not stop the manager [D44].
        this.log(`task ${task.id} (${task.name}): ${messageOf(err)}`)
      }
    }
  }

  /** The action for one task (spec §5.1 table). */
  private async examine(task: TaskRecord): Promise<void> {
    const live = this.runners.get(task.id)?.runner
    switch (task.state) {
      case 'Starting':
        if (live === undefined) await this.startRun(task)
        return
      case 'Pausing':
        if (live !== undefined) live.signal('pause')
        else await this.endOrphan(task)
        return
      case 'Resuming':
        if (live === undefined) return this.endOrphan(task)
        live.signal('resume')
        // Not paused yet: nothing will resume it but us [D27].
        if (!live.paused) await this.setState(task.id, 'Running', 'Resuming')
        return
      case 'Canceling':
        if (live !== undefined) live.signal('cancel')
        else await this.endWithoutRunner(task, 'canceled', 'Canceling')
        return
      case 'Running':
      case 'Paused':
        if (live === undefined) await this.endOrphan(task)
        return
      default:
        return
    }
  }

  /** Start steps of spec §5.1, in order [D25]. */
  private async startRun(seen: TaskRecord): Promise<void> {
    const task = await this.backend.getTask(seen.id)
    if (task === undefined || task.state !== 'Starting' || this.runners.has(task.id)) return
    const body = this.bodies[task.type]
    const startDate = Date.now()
    let logId: number | undefined
    let log: LogContent | undefined
    try {
      // (1) the log, (2) its content with the first line
      logId = (await this.backend.createTaskLog(task.id, startDate)).id
      log = new LogContent(await this.backend.openTaskLogContent(logId))
      await log.line(startedLine(new Date(startDate)))
      // (3) + (4) in one conditional update, so that no client ever sees a
      // `Starting` task with an active log (spec §3.6).
      const recorded = await this.setState(task.id, 'Running', 'Starting', { activeLogId: logId })
      if (!recorded) {
        await this.abandonStart(task, logId, log)
        return
      }
    } catch (err) {
      await this.failStart(task, logId, log, err)
      return
    }
    // (5) launch
    const runner = new TaskRunner({
      backend: this.backend,
      task: { ...task, state: 'Running', activeLogId: logId },
      logId,
      log,
      body: body ?? (async () => Promise.reject(new Error(`Tasks of type "${task.type}" cannot be run by this server.`))),
      storeOptions: this.storeOptions,
      workerThreads: this.workerThreads,
      copyThreads: this.copyThreads,
      recheckMs: this.intervalMs,
      report: this.log,
    })
    const done = runner.run().then(
      () => undefined,
      (err: unknown) => this.log(`task ${task.id}: runner crashed: ${messageOf(err)}`),
    )
    const entry = { runner, done }
    this.runners.set(task.id, entry)
    void done.finally(() => {
      if (this.runners.get(task.id) === entry) this.runners.delete(task.id)
      // The task is Idle now; a client may already have asked for another run.
      this.wake()
    })
  }

  /** The start lost a race (the client canceled meanwhile): no run, no log [D26]. */
  private async abandonStart(task: TaskRecord, logId: number, log: LogContent): Promise<void> {
    await log.close().catch(() => undefined)
    try {
      await this.backend.deleteTaskLog(logId)
    } catch {
      await this.finishLog(logId, 'canceled').catch(() => undefined)
    }
    const now = await this.backend.getTask(task.id)
    if (now?.state === 'Canceling' && now.activeLogId === undefined) await this.setState(task.id, 'Idle', 'Canceling')
  }

  /** A start step failed: the task goes Idle, the log (if created) `Failed` [D44]. */
  private async failStart(task: TaskRecord, logId: number | undefined, log: LogContent | undefined, err: unknown): Promise<void> {
    this.log(`task ${task.id} (${task.name}) could not be started: ${messageOf(err)}`)
    if (logId !== undefined) {
      try {
        if (log !== undefined) {
          await log.line(errorLine(`The run could not be started: ${messageOf(err)}`), { ownLine: true })
          await log.line(finishedLine('failed', new Date()), { ownLine: true })
        }
      } catch {
        // The content is what failed; the result below still tells the story.
      }
      await log?.close().catch(() => undefined)
      await this.backend.finishTaskLog(logId, 'Failed', Date.now()).catch(() => undefined)
    }
    const now = await this.backend.getTask(task.id).catch(() => undefined)
    if (now !== undefined && now.state !== 'Idle' && !this.runners.has(task.id)) {
      await this.backend.updateTask(task.id, { state: 'Idle', activeLogId: null }, now.state).catch(() => undefined)
    }
  }

  /** A task that looks active but has no runner: a fault; end it as `Failed`. */
  private async endOrphan(seen: TaskRecord): Promise<void> {
    const task = await this.backend.getTask(seen.id)
    if (task === undefined || this.runners.has(task.id)) return
    if (task.state === 'Starting' || task.state === 'Canceling') return this.examine(task)
    if (task.state === 'Idle') return
    this.log(`task ${task.id} (${task.name}) was ${task.state} without a runner; set it Idle`)
    await this.endWithoutRunner(task, 'failed', task.state, 'The run ended unexpectedly; start the task again.')
  }

  /**
   * Idle a task that has no runner: finish its active log (if still
   * incomplete) with a final line and `result`, then set it `Idle` and clear
   * the active log, conditionally on `expected` (retried with the fresh state
   * while it stays non-Idle and runner-less).
   */
  private async endWithoutRunner(task: TaskRecord, result: RunResult, expected: TaskState, error?: string): Promise<void> {
    let current: TaskRecord | undefined = task
    let state: TaskState = expected
    for (let attempt = 0; attempt < 3 && current !== undefined; attempt++) {
      if (current.activeLogId !== undefined) await this.finishLog(current.activeLogId, result, error)
      if (await this.setState(current.id, 'Idle', state, { activeLogId: null })) return
      current = await this.backend.getTask(task.id)
      if (current === undefined || current.state === 'Idle' || this.runners.has(current.id)) return
      state = current.state
    }
  }

  /** Append the end lines to an incomplete log and set its result. */
  private async finishLog(logId: number, result: RunResult, error?: string): Promise<void> {
    const record = await this.backend.getTaskLog(logId)
    if (record === undefined || record.resultType !== 'Incomplete') return
    const now = new Date()
    try {
      const writer = await this.backend.openTaskLogContent(logId)
      const log = new LogContent(writer, await this.endsInsideLine(logId))
      try {
        if (error !== undefined) await log.line(errorLine(error), { ownLine: true })
        await log.line(finishedLine(result, now), { ownLine: true })
      } finally {
        await log.close()
      }
    } catch (err) {
      this.log(`log ${logId}: could not append the final line: ${messageOf(err)}`)
    }
    await this.backend.finishTaskLog(logId, result === 'canceled' ? 'Canceled' : result === 'failed' ? 'Failed' : 'Succeeded', now.getTime())
  }

  /** Whether a log's content ends inside a line (e.g. after a crash mid-copy). */
  private async endsInsideLine(logId: number): Promise<boolean> {
    const stream = await this.backend.readTaskLogContent(logId)
    if (stream === undefined) return false
    let last = 0x0a
    for await (const chunk of stream as AsyncIterable<Buffer | string>) {
      if (chunk.length > 0) last = typeof chunk === 'string' ? chunk.charCodeAt(chunk.length - 1) : chunk[chunk.length - 1]!
    }
    return last !== 0x0a
  }

  /** Conditional state change; false when the state was no longer `from`. */
  private async setState(id: number, to: TaskState, from: TaskState, extra?: { activeLogId: number | null }): Promise<boolean> {
    try {
      await this.backend.updateTask(id, { ...extra, state: to }, from)
      return true
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code === 'state_changed') return false
      throw err
    }
  }

  // ---- start-up and shutdown ----

  /** Every non-Idle task is auto-canceled: `Idle`, its log finished `Canceled` (spec §5.8). */
  private async recover(): Promise<void> {
    const tasks = await this.backend.listTasks()
    for (const task of tasks) {
      if (task.state === 'Idle') continue
      this.log(`task ${task.id} (${task.name}) was ${task.state} at start-up; auto-canceled`)
      try {
        await this.endWithoutRunner(task, 'canceled', task.state)
      } catch (err) {
        this.log(`task ${task.id} (${task.name}) could not be recovered: ${messageOf(err)}`)
      }
    }
  }

  private async stop(): Promise<void> {
    if (this.phase === 'new') {
      this.phase = 'stopped' // never started: there is nothing of ours to stop
      return
    }
    const wasStarting = this.phase === 'starting'
    this.phase = 'stopping'
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    if (wasStarting) await this.starting?.catch(() => undefined)
    while (this.ticking !== undefined) await this.ticking
    let tasks: TaskRecord[] = []
    try {
      tasks = await this.backend.listTasks()
    } catch (err) {
      this.log(`shutdown: could not list tasks: ${messageOf(err)}`)
    }
    for (const task of tasks) {
      if (task.state === 'Idle') continue
      try {
        await this.cancelForShutdown(task)
      } catch (err) {
        this.log(`shutdown: task ${task.id} (${task.name}): ${messageOf(err)}`)
      }
    }
    for (const { runner } of this.runners.values()) runner.signal('cancel')
    await Promise.all([...this.runners.values()].map((r) => r.done))
    this.phase = 'stopped'
  }

  private async cancelForShutdown(seen: TaskRecord): Promise<void> {
    let task: TaskRecord | undefined = seen
    for (let attempt = 0; attempt < 3 && task !== undefined && task.state !== 'Idle'; attempt++) {
      const live = this.runners.get(task.id)?.runner
      if (live === undefined) return this.endWithoutRunner(task, 'canceled', task.state)
      if (task.state === 'Canceling' || (await this.setState(task.id, 'Canceling', task.state))) {
        live.signal('cancel')
        return
      }
      task = await this.backend.getTask(task.id)
    }
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
