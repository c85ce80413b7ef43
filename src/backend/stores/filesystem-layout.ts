/**
 * The on-disk layout of a filesystem object store (CloudSync spec §5.7.1).
 *
 * Object `demo:1` lives at `B/d9/59/demo%3A1` (the first four hex digits of
 * the MD5 of the PID name two directory levels); each datastream version's
 * content sits next to it as `demo%3A1+DC+DC.0`. Names are encoded so that
 * any PID maps to exactly one safe file name: `/` and a trailing `.` are
 * always escaped, so no PID can climb out of its directory.
 */
import crypto, { createHash, randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { threadId } from 'node:worker_threads'
import { join } from 'node:path'

// Characters kept as-is; everything else is %XX per UTF-8 byte.
const KEEP = new Uint8Array(128)
for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-=()[];.') KEEP[c.charCodeAt(0)] = 1
const HEX = '0123456789ABCDEF'

function pctByte(b: number): string {
  return '%' + HEX[b >> 4] + HEX[b & 15]
}

/**
 * Encode one name component (PID, datastream id or version id) for a file
 * name: `a–z A–Z 0–9 - = ( ) [ ] ;` kept, `.` kept except as the last
 * character, everything else `%XX` per UTF-8 byte (upper-case hex).
 *
 * @example
 * encodeName('demo:1')  // 'demo%3A1'
 * encodeName('DC.0')    // 'DC.0'
 * encodeName('a.')      // 'a%2E'
 */
export function encodeName(value: string): string {
  const n = value.length
  let i = 0
  // Fast path: most PIDs need only their `:` escaped.
  while (i < n) {
    const c = value.charCodeAt(i)
    if (c >= 128 || KEEP[c] === 0 || (c === 0x2e && i === n - 1)) break
    i++
  }
  if (i === n) return value
  let out = value.slice(0, i)
  for (; i < n; i++) {
    const c = value.charCodeAt(i)
    if (c < 128) {
      out += KEEP[c] === 1 && !(c === 0x2e && i === n - 1) ? value[i] : pctByte(c)
      continue
    }
    // Non-ASCII: encode the whole code point (a lone surrogate becomes U+FFFD).
    const cp = value.codePointAt(i)!
    const width = cp > 0xffff ? 2 : 1
    for (const b of Buffer.from(value.slice(i, i + width), 'utf8')) out += pctByte(b)
    i += width - 1
  }
  return out
}

/**
 * Decode one encoded name component; `undefined` when it is not valid
 * percent-encoding of UTF-8.
 *
 * @example
 * decodeName('demo%3A1') // 'demo:1'
 */
export function decodeName(encoded: string): string | undefined {
  if (!encoded.includes('%')) return encoded
  try {
    return decodeURIComponent(encoded)
  } catch {
    return undefined
  }
}

/** What a file name in the store stands for. */
export type StoreFileName =
  | { kind: 'object'; pid: string }
  | { kind: 'content'; pid: string; dsId: string; versionId: string }

/**
 * Parse a file name found in the store: no `+` → an object file; otherwise
 * split at the first and last `+` into PID, datastream id and version id.
 * `undefined` for names that are neither (temporary files, foreign files,
 * object names that are not the canonical encoding of their PID).
 *
 * @example
 * parseFileName('demo%3A1')          // { kind: 'object', pid: 'demo:1' }
 * parseFileName('demo%3A1+DC+DC.0')  // { kind: 'content', pid: 'demo:1', dsId: 'DC', versionId: 'DC.0' }
 */
export function parseFileName(name: string): StoreFileName | undefined {
  if (isTempName(name)) return undefined
  const first = name.indexOf('+')
  if (first === -1) {
    const pid = decodeName(name)
    // Only canonical names: a foreign `demo:1` file must not pose as an object
    // that exists() and readObject() would then fail to find.
    return pid === undefined || pid === '' || encodeName(pid) !== name ? undefined : { kind: 'object', pid }
  }
  const last = name.lastIndexOf('+')
  if (last === first) return undefined
  const pid = decodeName(name.slice(0, first))
  const dsId = decodeName(name.slice(first + 1, last))
  const versionId = decodeName(name.slice(last + 1))
  if (pid === undefined || dsId === undefined || versionId === undefined) return undefined
  return { kind: 'content', pid, dsId, versionId }
}

/**
 * The directory holding a PID's files, relative to the store base:
 * two levels named by the first four hex digits of the PID's MD5.
 *
 * @example
 * objectDir('/srv/store', 'demo:1') // '/srv/store/d9/59'
 */
export function objectDir(base: string, pid: string): string {
  const h = md5Hex(pid)
  return join(base, h.slice(0, 2), h.slice(2, 4))
}

// One-shot hashing (Node ≥ 20.12) is several times cheaper than a Hash object;
// this runs for every object a walk meets.
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash
const hashHex: (text: string) => string =
  typeof oneShot === 'function' ? (text) => oneShot('md5', text, 'hex') : (text) => createHash('md5').update(text, 'utf8').digest('hex')
// A copy asks for the same PID's directory in three stores in a row: remember the last one.
let lastText = ''
let lastHex = hashHex('')
function md5Hex(text: string): string {
  if (text !== lastText) {
    lastHex = hashHex(text)
    lastText = text
  }
  return lastHex
}

/**
 * File name of a PID's object (FOXML) file.
 *
 * @example
 * objectFileName('demo:1') // 'demo%3A1'
 */
export function objectFileName(pid: string): string {
  return encodeName(pid)
}

/**
 * File name of one datastream version's content.
 *
 * @example
 * contentFileName('demo:1', 'DC', 'DC.0') // 'demo%3A1+DC+DC.0'
 */
export function contentFileName(pid: string, dsId: string, versionId: string): string {
  return encodeName(pid) + '+' + encodeName(dsId) + '+' + encodeName(versionId)
}

/**
 * Full path of a PID's object file.
 *
 * @example
 * objectPath('/srv/store', 'demo:1') // '/srv/store/d9/59/demo%3A1'
 */
export function objectPath(base: string, pid: string): string {
  return join(objectDir(base, pid), objectFileName(pid))
}

/**
 * Full path of a datastream version's content file.
 *
 * @example
 * contentPath('/srv/store', 'demo:1', 'DC', 'DC.0') // '/srv/store/d9/59/demo%3A1+DC+DC.0'
 */
export function contentPath(base: string, pid: string, dsId: string, versionId: string): string {
  return join(objectDir(base, pid), contentFileName(pid, dsId, versionId))
}

// `~` is always escaped by encodeName, so no real object or content file
// name contains it; the `+` keeps tools that only test for `+` from taking a
// temporary file for an object.
const TEMP_MARK = '+~'
const TEMP_SUFFIX = '.tmp'
// Who writes a temporary: host (short hash), process id and a token unique to
// this process incarnation (a restarted server often gets its old pid back,
// e.g. as pid 1 in a container). Enumeration uses it to tell a crashed
// writer's leftovers from a write in progress (see `tempOwner`).
const HOST_TAG = createHash('md5').update(hostname()).digest('hex').slice(0, 6)
const PID_TAG = process.pid.toString(36)
let INCARNATION = randomBytes(6).toString('hex')
let TEMP_PREFIX = `${TEMP_MARK}${HOST_TAG}-${PID_TAG}-${INCARNATION}-`
// Threads of one process share its token but not this counter.
const THREAD_TAG = threadId === 0 ? '' : `${threadId.toString(36)}.`
let tempCounter = 0

/**
 * This process incarnation's token in temporary names. Hand it to worker
 * threads that write to stores (see {@link adoptTempIncarnation}), so that
 * their temporaries count as the process's own.
 *
 * @example
 * new Worker(url, { workerData: { tempIncarnation: tempIncarnation() } })
 */
export function tempIncarnation(): string {
  return INCARNATION
}

/**
 * In a worker thread: use the token of the thread that started it, so that
 * no thread of this process takes another's temporaries for a crashed
 * writer's leftovers. Ignored unless it looks like a token.
 *
 * @example
 * adoptTempIncarnation(workerData.tempIncarnation)
 */
export function adoptTempIncarnation(token: string): void {
  if (typeof token !== 'string' || !/^[0-9a-f]{12}$/.test(token)) return
  INCARNATION = token
  TEMP_PREFIX = `${TEMP_MARK}${HOST_TAG}-${PID_TAG}-${INCARNATION}-`
}

/**
 * A unique temporary name for writing `finalName` in the same directory.
 *
 * @example
 * tempName('demo%3A1') // e.g. 'demo%3A1+~3fa9c1-1a2b-5e0c2d9a7b11-k9.tmp' (a worker thread adds its id: '…-2.k9.tmp')
 */
export function tempName(finalName: string): string {
  tempCounter = (tempCounter + 1) % Number.MAX_SAFE_INTEGER
  return `${finalName}${TEMP_PREFIX}${THREAD_TAG}${tempCounter.toString(36)}${TEMP_SUFFIX}`
}

/**
 * Whether a file name is one of our temporary names.
 *
 * @example
 * isTempName(tempName('demo%3A1')) // true
 * isTempName('demo%3A1+DC+DC.0')   // false
 */
export function isTempName(name: string): boolean {
  return name.endsWith(TEMP_SUFFIX) && name.includes(TEMP_MARK)
}

/**
 * Who wrote a temporary file, as far as this process can tell:
 * `'self'` — this process (a write in progress);
 * `'dead'` — a process on this host that no longer runs, or an earlier
 * incarnation of this process id (a crash leftover, safe to remove now);
 * `'unknown'` — a live process, another host, or a name from an older
 * version (judge by age).
 *
 * @example
 * tempOwner(tempName('demo%3A1')) // 'self'
 */
export function tempOwner(name: string): 'self' | 'dead' | 'unknown' {
  const at = name.lastIndexOf(TEMP_MARK)
  if (at === -1 || !name.endsWith(TEMP_SUFFIX)) return 'unknown'
  const [host, pid, incarnation] = name.slice(at + TEMP_MARK.length, -TEMP_SUFFIX.length).split('-')
  if (host !== HOST_TAG || pid === undefined || incarnation === undefined || incarnation.length !== INCARNATION.length) return 'unknown'
  if (incarnation === INCARNATION) return 'self'
  if (pid === PID_TAG) return 'dead' // our pid, an earlier life
  const n = parseInt(pid, 36)
  if (!Number.isSafeInteger(n) || n <= 0) return 'unknown'
  try {
    process.kill(n, 0) // signal 0: only asks whether the process exists
    return 'unknown'
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH' ? 'dead' : 'unknown'
  }
}
