/**
 * Task log content lines (CloudSync spec §5.5) and a writer that keeps the
 * line discipline: `# …` lines always start on a fresh line, and an `ERROR:`
 * continues an open `Copying <pid>..` line [D29].
 *
 * Timestamps are UTC `toISOString()` (`YYYY-MM-DDTHH:mm:ss.sssZ`).
 */
import type { TaskLogWriter } from '../types.js'

/** The final result of a run, as written in `# Finished (<r>) at`. */
export type RunResult = 'succeeded' | 'failed' | 'canceled'

/** Copy outcomes (spec §5.4), written right after `Copying <pid>..`. */
export const COPY_OUTCOME = {
  new: 'OK (new in destination)',
  replaced: 'REPLACED (exists in destination)',
  exists: 'SKIPPED (exists in destination)',
  managed: 'SKIPPED (has managed datastream(s))',
  absent: 'SKIPPED (does not exist in source)',
} as const

/**
 * `# Started at <ts>` (with line end).
 *
 * @example
 * startedLine(new Date(0)) // '# Started at 1970-01-01T00:00:00.000Z\n'
 */
export function startedLine(at: Date): string {
  return `# Started at ${at.toISOString()}\n`
}

/**
 * `# Paused at <ts>` (with line end).
 *
 * @example
 * pausedLine(new Date()) // '# Paused at 2011-11-02T14:15:41.002Z\n'
 */
export function pausedLine(at: Date): string {
  return `# Paused at ${at.toISOString()}\n`
}

/**
 * `# Resumed at <ts>` (with line end).
 *
 * @example
 * resumedLine(new Date()) // '# Resumed at 2011-11-02T14:16:10.870Z\n'
 */
export function resumedLine(at: Date): string {
  return `# Resumed at ${at.toISOString()}\n`
}

/**
 * `# Finished (<r>) at <ts>` (with line end).
 *
 * @example
 * finishedLine('canceled', new Date()) // '# Finished (canceled) at 2011-11-02T14:16:12.517Z\n'
 */
export function finishedLine(result: RunResult, at: Date): string {
  return `# Finished (${result}) at ${at.toISOString()}\n`
}

const LINE_BREAKS = /\r\n?|\n/g

/**
 * `ERROR: <message>` (with line end). A multi-line message keeps its first
 * line on the `ERROR:` line and indents the rest as detail lines, so no
 * detail line can pose as a `#` line.
 *
 * @example
 * errorLine('disk full') // 'ERROR: disk full\n'
 */
export function errorLine(message: string): string {
  const text = message.trim() === '' ? 'Unknown error' : message.trim()
  return `ERROR: ${text.replace(LINE_BREAKS, '\n  ')}\n`
}

/**
 * `Copying <pid>..` (no line end: the outcome follows).
 *
 * @example
 * copyingPrefix('demo:1') + COPY_OUTCOME.new // 'Copying demo:1..OK (new in destination)'
 */
export function copyingPrefix(pid: string): string {
  return `Copying ${pid}..`
}

/** How long the start of a line (`Copying <pid>..`) may wait for its end before it is written alone. */
const HOLD_MS = 50

/**
 * Appends to a task log's content and knows whether a line is open.
 *
 * The start of a line is held back briefly: when its end follows within
 * 50 ms (the usual case, a small object copied) the whole line goes out in
 * one write; otherwise the start is written on its own, so a long copy still
 * shows `Copying <pid>..` while it runs. Complete lines are written at once.
 *
 * @example
 * const log = new LogContent(await backend.openTaskLogContent(id))
 * await log.open(copyingPrefix('demo:1'))
 * await log.line(COPY_OUTCOME.new)   // ends the open line
 * await log.line(pausedLine(new Date()), { ownLine: true })
 */
export class LogContent {
  private lineOpen: boolean
  private held = ''
  private holdTimer: NodeJS.Timeout | undefined
  private heldWrite: Promise<void> | undefined

  /** `lineOpen`: whether the content written so far ends inside a line. */
  constructor(
    private readonly writer: TaskLogWriter,
    lineOpen = false,
  ) {
    this.lineOpen = lineOpen
  }

  /** Write text that does not end the line (e.g. `Copying <pid>..`). */
  async open(text: string): Promise<void> {
    if (text.length === 0) return
    if (text.endsWith('\n')) return this.line(text)
    this.held += text
    this.lineOpen = true
    this.holdTimer ??= setTimeout(() => {
      this.holdTimer = undefined
      const out = this.held
      this.held = ''
      // A failure surfaces at the next write or at close().
      this.heldWrite = this.writer.write(out)
      this.heldWrite.catch(() => undefined)
    }, HOLD_MS).unref()
  }

  /**
   * Write `text` and end the line. By default it continues an open line
   * (outcomes, `ERROR:` after `Copying <pid>..`); with `ownLine` an open
   * line is ended first (`#` lines).
   */
  async line(text: string, options?: { ownLine?: boolean }): Promise<void> {
    const body = text.endsWith('\n') ? text : text + '\n'
    const out = this.takeHeld() + (options?.ownLine === true && this.lineOpen ? '\n' + body : body)
    this.lineOpen = false
    await this.settleHeldWrite()
    await this.writer.write(out)
  }

  /**
   * Write text as it is: any number of complete lines, possibly followed by
   * the start of a line (which is held back like {@link open}).
   */
  async append(text: string): Promise<void> {
    const end = text.lastIndexOf('\n') + 1
    if (end > 0) await this.line(text.slice(0, end))
    if (end < text.length) await this.open(text.slice(end))
  }

  /** Whether the content ends inside a line. */
  get isLineOpen(): boolean {
    return this.lineOpen
  }

  /** Write what is held back, then close the content. */
  async close(): Promise<void> {
    const rest = this.takeHeld()
    try {
      await this.settleHeldWrite()
      if (rest.length > 0) await this.writer.write(rest)
    } finally {
      await this.writer.close()
    }
  }

  private takeHeld(): string {
    if (this.holdTimer !== undefined) clearTimeout(this.holdTimer)
    this.holdTimer = undefined
    const out = this.held
    this.held = ''
    return out
  }

  /** Writes stay in order: wait for a held start that the timer sent (and report its failure). */
  private async settleHeldWrite(): Promise<void> {
    const pending = this.heldWrite
    if (pending === undefined) return
    this.heldWrite = undefined
    await pending
  }
}
