/** Task-log line patterns (spec §5.5) and polling, shared by the task tests. */

/** A log timestamp, `YYYY-MM-DDTHH:mm:ss.sssZ`. */
export const TS = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z'
export const STARTED = new RegExp(`^# Started at ${TS}$`)
export const PAUSED = new RegExp(`^# Paused at ${TS}$`)
export const RESUMED = new RegExp(`^# Resumed at ${TS}$`)
/** `# Finished (<r>) at <ts>`, `r` = succeeded | failed | canceled. */
export const finished = (r: string): RegExp => new RegExp(`^# Finished \\(${r}\\) at ${TS}$`)
/** A complete copy line with one of the outcomes of §5.4; group 1 is the PID. */
export const COPY_LINE = /^Copying (\S+)\.\.(OK \(new in destination\)|REPLACED \(exists in destination\)|SKIPPED \(exists in destination\)|SKIPPED \(has managed datastream\(s\)\)|SKIPPED \(does not exist in source\))$/

/** Poll (no fixed sleeps) until `probe` returns a value other than undefined/false, or fail after the deadline. */
export async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
