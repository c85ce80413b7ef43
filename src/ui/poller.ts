/**
 * CloudSync default UI — the polling rhythm (spec §7.3).
 *
 * Tasks and task logs are re-read every 5 s while any task is active and
 * every 60 s otherwise; after the user changes a task, a few quick 1 s
 * re-reads show the change taking effect (Starting → Running, Pausing →
 * Paused …). Reads are plain GETs: the server answers them with an ETag and
 * `Cache-Control: private, no-cache`, so the browser revalidates with
 * `If-None-Match` and an unchanged list costs a body-less 304. Nothing is
 * polled while the page is hidden; coming back refreshes at once.
 */
/** Poll intervals in milliseconds. A page embedding the UI may set `window.CloudSyncUISettings` before the script loads. */
export interface PollSettings {
  /** While a task is active. Default 5000. */
  activeMs: number
  /** While no task is active. Default 60000. */
  idleMs: number
  /** Right after the user changed something. Default 1000. */
  followUpMs: number
  /** How many quick re-reads follow a change. Default 4. */
  followUps: number
}

/** The effective settings: defaults, overridden by `window.CloudSyncUISettings`. */
export const settings: PollSettings = (() => {
  const defaults: PollSettings = { activeMs: 5000, idleMs: 60000, followUpMs: 1000, followUps: 4 }
  const given = (window as unknown as { CloudSyncUISettings?: Partial<PollSettings> }).CloudSyncUISettings
  if (given && typeof given === 'object') {
    for (const key of Object.keys(defaults) as Array<keyof PollSettings>) {
      const value = given[key]
      if (typeof value === 'number' && value > 0 && isFinite(value)) defaults[key] = value
    }
  }
  return defaults
})()

/**
 * Calls `load` on a schedule. `load` resolves with whether anything is
 * active, which picks the next interval. Overlapping loads never happen:
 * a refresh asked for during a load runs right after it.
 *
 * @example
 * const poller = new Poller(loadTasks)
 * poller.start()
 * poller.hurry() // after a PATCH: re-read soon, a few times
 */
export class Poller {
  private timer: number | undefined
  private running = false
  private again = false
  private stopped = true
  private quick = 0

  constructor(private readonly load: () => Promise<boolean>, private readonly fixedMs?: number) {}

  /** Begin (or resume) polling with an immediate load. */
  start(): void {
    this.stopped = false
    this.now()
  }

  /** Stop polling; a load in progress finishes but schedules nothing. */
  stop(): void {
    this.stopped = true
    this.clear()
  }

  /** Load now (or right after the load in progress), then continue the rhythm. */
  now(): void {
    if (this.stopped) return
    this.clear()
    if (this.running) {
      this.again = true
      return
    }
    this.running = true
    this.load().then((active) => this.after(active), () => this.after(false))
  }

  /** Load now and re-read quickly a few times: the user just changed something. */
  hurry(): void {
    this.quick = settings.followUps
    this.now()
  }

  private after(active: boolean): void {
    this.running = false
    if (this.stopped) return
    // Nothing active: no change is under way, so back to the slow rhythm at once.
    if (!active) this.quick = 0
    if (this.again) {
      this.again = false
      this.now()
      return
    }
    let delay: number
    if (this.fixedMs !== undefined) delay = this.fixedMs
    else if (this.quick > 0) {
      this.quick -= 1
      delay = settings.followUpMs
    } else delay = active ? settings.activeMs : settings.idleMs
    this.timer = window.setTimeout(() => this.now(), delay)
  }

  private clear(): void {
    if (this.timer !== undefined) window.clearTimeout(this.timer)
    this.timer = undefined
  }
}
