/**
 * PID rules shared by every store connector (CloudSync spec §5.6).
 *
 * - {@link isValidPid}: the syntax check applied to pattern enumeration, which
 *   is what hides content items such as `demo:1+DC+DC.0` in flat stores.
 * - {@link compilePidPattern}: glob matching where only `*` is special [D23].
 * - {@link tokenizePidList}: the `pidList` object-set format.
 *
 * Nothing here allocates per PID beyond what the match needs, and no regular
 * expression is built from user input (patterns cannot cause ReDoS).
 */

/**
 * Whether `pid` passes the PID syntax check: non-empty; no `+`, `/` or space;
 * exactly one `:`, which is neither the first nor the last character.
 *
 * @example
 * isValidPid('demo:1')          // true
 * isValidPid('demo:1+DC+DC.0')  // false
 * isValidPid(':1')              // false
 */
export function isValidPid(pid: string): boolean {
  const n = pid.length
  let colon = -1
  for (let i = 0; i < n; i++) {
    const c = pid.charCodeAt(i)
    if (c === 0x2b /* + */ || c === 0x2f /* / */ || c === 0x20 /* space */) return false
    if (c === 0x3a /* : */) {
      if (colon !== -1) return false
      colon = i
    }
  }
  return colon > 0 && colon < n - 1
}

/** A compiled PID pattern: true when the whole PID matches. */
export type PidMatcher = (pid: string) => boolean

const matchAll: PidMatcher = () => true

/**
 * Compile a `pidPattern` set's pattern. `*` alone matches every PID; otherwise
 * `*` matches any run of characters (including none) and every other
 * character matches itself, case-sensitively, over the whole PID.
 *
 * @example
 * const m = compilePidPattern('demo:*')
 * m('demo:1')   // true
 * m('demo:')    // true
 * m('other:1')  // false
 * compilePidPattern('*:1')('demo:1') // true
 */
export function compilePidPattern(pattern: string): PidMatcher {
  if (pattern === '*') return matchAll
  if (!pattern.includes('*')) return (pid) => pid === pattern
  const parts = pattern.split('*')
  const head = parts[0]!
  const tail = parts[parts.length - 1]!
  const middle = parts.slice(1, -1).filter((p) => p.length > 0)
  const minLength = head.length + tail.length + middle.reduce((n, p) => n + p.length, 0)
  // Anchored head and tail, then each middle literal at its leftmost position:
  // greedy-leftmost is exact for `*`-only globs and runs in linear time.
  return (pid) => {
    if (pid.length < minLength || !pid.startsWith(head) || !pid.endsWith(tail)) return false
    let at = head.length
    const end = pid.length - tail.length
    for (const literal of middle) {
      const found = pid.indexOf(literal, at)
      if (found === -1 || found + literal.length > end) return false
      at = found + literal.length
    }
    return true
  }
}

/**
 * Whether `pid` matches `pattern` (see {@link compilePidPattern}; compile once
 * when matching many PIDs).
 *
 * @example
 * matchPidPattern('demo:*', 'demo:1') // true
 */
export function matchPidPattern(pattern: string, pid: string): boolean {
  return compilePidPattern(pattern)(pid)
}

const WHITESPACE_RUN = /\s+/

/**
 * Split a `pidList` set's data on runs of whitespace, dropping empty tokens
 * and keeping order and duplicates.
 *
 * @example
 * tokenizePidList('demo:1\n demo:2\tdemo:1\n') // ['demo:1', 'demo:2', 'demo:1']
 */
export function tokenizePidList(data: string): string[] {
  const tokens = data.split(WHITESPACE_RUN)
  // Only the first and last tokens can be empty (leading/trailing whitespace).
  if (tokens.length > 0 && tokens[tokens.length - 1] === '') tokens.pop()
  if (tokens.length > 0 && tokens[0] === '') tokens.shift()
  return tokens
}

/**
 * The PIDs of a pidList set that exist in a store, in list order with
 * duplicates kept (spec §5.6); ends quietly once `signal` aborts, even while
 * a check is in flight, and rejects with the store's error otherwise.
 *
 * @example
 * yield* existingPids(set.pids, (pid, signal) => this.exists(pid, signal), signal)
 */
export async function* existingPids(
  pids: readonly string[],
  exists: (pid: string, signal: AbortSignal) => Promise<boolean>,
  signal: AbortSignal,
): AsyncGenerator<string> {
  for (const pid of pids) {
    if (signal.aborted) return
    let found: boolean
    try {
      found = await exists(pid, signal)
    } catch (err) {
      if (signal.aborted) return
      throw err
    }
    if (found) yield pid
  }
}
