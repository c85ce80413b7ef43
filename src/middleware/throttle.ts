/**
 * throttle — per-account limit on failed logins (spec §6.3).
 *
 * After `maxFailures` failed attempts for one account within `windowMs`,
 * every attempt for that account — right password or wrong — is refused for
 * `windowMs` (callers answer 429 with `Retry-After`). Other accounts are not
 * affected. Share ONE instance between `authenticate()` (HTTP Basic) and
 * `login()` (the form) so both kinds of attempt count together.
 *
 * Keys are account names only; passwords never reach this module. Memory is
 * bounded by `maxAccounts`; the throttle is in-process state, which is a safe
 * miss on a second instance (it only limits, it never grants).
 */
import { createHash } from 'node:crypto'

/** Options of {@link LoginThrottle}. */
export interface LoginThrottleOptions {
  /** Failed attempts within `windowMs` that lock the account. Default `10`. */
  maxFailures?: number
  /** Length of the counting window and of the lock-out, in ms. Default 5 minutes. */
  windowMs?: number
  /** Accounts tracked at most; the least recently failing are forgotten first. Default `100000`. */
  maxAccounts?: number
}

/** The answer of {@link LoginThrottle.check}. */
export type ThrottleDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number }

interface Entry {
  /** Times of the recent failures, oldest first (at most maxFailures). */
  failures: number[]
  /** Epoch ms until which every attempt is refused; 0 when not locked. */
  lockedUntil: number
}

const ALLOWED: ThrottleDecision = Object.freeze({ allowed: true as const })
// Names are at most 64 characters (spec §3.5); longer input is hashed so a
// hostile client cannot make the throttle hold kilobytes per key.
const MAX_KEY_LENGTH = 256

/**
 * Counts failed logins per account and locks accounts that fail too often.
 *
 * @example
 * const throttle = new LoginThrottle()
 * app.use(authenticate({ verify, lookup, throttle }))
 * app.use(login({ verify, throttle }))
 */
export class LoginThrottle {
  readonly maxFailures: number
  readonly windowMs: number
  readonly maxAccounts: number
  readonly #entries = new Map<string, Entry>()

  constructor(options: LoginThrottleOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new TypeError('LoginThrottle: options must be an object')
    this.maxFailures = positiveInteger(options.maxFailures, 10, 'maxFailures')
    this.windowMs = positiveInteger(options.windowMs, 5 * 60_000, 'windowMs')
    this.maxAccounts = positiveInteger(options.maxAccounts, 100_000, 'maxAccounts')
  }

  /** Accounts currently tracked (for monitoring and tests). */
  get size(): number {
    return this.#entries.size
  }

  /**
   * May an attempt for `account` proceed? Call before verifying the password.
   *
   * @example
   * const decision = throttle.check(name)
   * if (!decision.allowed) res.setHeader('Retry-After', decision.retryAfterSeconds)
   */
  check(account: string): ThrottleDecision {
    const entry = this.#entries.get(keyOf(account))
    if (entry === undefined || entry.lockedUntil === 0) return ALLOWED
    const left = entry.lockedUntil - Date.now()
    if (left > 0) return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(left / 1000)) }
    this.#entries.delete(keyOf(account))
    return ALLOWED
  }

  /**
   * Record a failed attempt (wrong password, unknown or disabled account).
   *
   * @example
   * if (user === undefined) throttle.recordFailure(name)
   */
  recordFailure(account: string): void {
    const key = keyOf(account)
    const now = Date.now()
    let entry = this.#entries.get(key)
    if (entry === undefined) {
      entry = { failures: [], lockedUntil: 0 }
      this.#evict(now)
    } else {
      // Re-insert so the Map's order stays "least recently failing first".
      this.#entries.delete(key)
    }
    this.#entries.set(key, entry)
    if (entry.lockedUntil > now) return
    entry.lockedUntil = 0
    const failures = entry.failures
    const horizon = now - this.windowMs
    let stale = 0
    while (stale < failures.length && failures[stale]! <= horizon) stale++
    if (stale > 0) failures.splice(0, stale)
    failures.push(now)
    if (failures.length >= this.maxFailures) {
      entry.lockedUntil = now + this.windowMs
      failures.length = 0
    }
  }

  /**
   * Record a successful attempt: the account's failure count starts over.
   * (A locked account cannot succeed: `check` refuses it first.)
   *
   * @example
   * throttle.recordSuccess(user.name)
   */
  recordSuccess(account: string): void {
    const key = keyOf(account)
    const entry = this.#entries.get(key)
    if (entry !== undefined && entry.lockedUntil <= Date.now()) this.#entries.delete(key)
  }

  /** Make room for one more entry: drop a stale oldest entry, or the oldest when full. */
  #evict(now: number): void {
    const oldest = this.#entries.entries().next()
    if (oldest.done === true) return
    const [key, entry] = oldest.value
    const last = entry.failures.length > 0 ? entry.failures[entry.failures.length - 1]! : 0
    const stale = entry.lockedUntil <= now && last <= now - this.windowMs
    if (stale || this.#entries.size >= this.maxAccounts) this.#entries.delete(key)
  }
}

function keyOf(account: string): string {
  const name = typeof account === 'string' ? account : String(account)
  return name.length <= MAX_KEY_LENGTH ? name : 'sha256:' + createHash('sha256').update(name).digest('base64')
}

function positiveInteger(value: unknown, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new TypeError(`LoginThrottle: option "${name}" must be a positive integer`)
  }
  return value
}
