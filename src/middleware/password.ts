/**
 * password — salted scrypt hashing with constant-time verification.
 *
 * Hashes are self-describing strings in the PHC format that passlib and
 * others use for scrypt:
 *
 *     $scrypt$ln=15,r=8,p=1$<salt, base64>$<key, base64>
 *
 * `ln` is log2 of the cost N. Verification reads the parameters from the
 * stored string, so the defaults can be raised later without breaking old
 * hashes; {@link needsRehash} tells when a stored hash should be upgraded.
 * Legacy unsalted SHA-1 hashes (40 hex characters, CloudSync spec §6.5) are
 * verified too, so imported accounts can log in once and be upgraded.
 *
 * Depends on `node:crypto` only; importing it loads no other piece.
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto'

/** The parameters new hashes use: N = 2^15, r = 8, p = 1 (spec §6.5). */
const LN = 15
const R = 8
const P = 1
const SALT_BYTES = 16
const KEY_BYTES = 32

// Stored strings come from a database: bound what they may ask for, so a
// corrupted or hostile row cannot make one login allocate gigabytes.
const MAX_LN = 20
const MAX_R = 32
const MAX_P = 16
const MAX_MEMORY = 256 * 1024 * 1024

const SCRYPT_RE = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{11,88})={0,2}\$([A-Za-z0-9+/]{22,88})={0,2}$/
const SHA1_RE = /^[0-9a-fA-F]{40}$/

interface ScryptHash {
  ln: number
  r: number
  p: number
  salt: Buffer
  key: Buffer
}

/** Parse a stored scrypt string; undefined when malformed or out of bounds. */
function parseScrypt(stored: string): ScryptHash | undefined {
  const m = SCRYPT_RE.exec(stored)
  if (m === null) return undefined
  const ln = Number(m[1])
  const r = Number(m[2])
  const p = Number(m[3])
  if (ln < 1 || ln > MAX_LN || r < 1 || r > MAX_R || p < 1 || p > MAX_P) return undefined
  if (128 * 2 ** ln * r > MAX_MEMORY) return undefined
  const salt = Buffer.from(m[4]!, 'base64')
  const key = Buffer.from(m[5]!, 'base64')
  if (salt.length < 8 || key.length < 16) return undefined
  return { ln, r, p, salt, key }
}

/** Run scrypt; never rejects for bounded parameters (they were checked). */
function derive(password: string, salt: Buffer, ln: number, r: number, p: number, keyLength: number): Promise<Buffer> {
  const N = 2 ** ln
  // Node's default maxmem (32 MiB) is exactly what N=2^15, r=8 needs, and
  // scrypt refuses at the limit: allow twice the working set.
  const maxmem = 2 * 128 * N * r + 128 * r * p
  return new Promise((resolve, reject) => {
    scrypt(Buffer.from(password, 'utf8'), salt, keyLength, { N, r, p, maxmem }, (err, key) => {
      if (err !== null) reject(err)
      else resolve(key)
    })
  })
}

function b64(buf: Buffer): string {
  // PHC strings use base64 without padding.
  return buf.toString('base64').replace(/=+$/, '')
}

/**
 * Hash a password with scrypt (N=2^15, r=8, p=1), a fresh 16-byte random
 * salt and a 32-byte key. The result is a self-describing string to store.
 *
 * @example
 * const stored = await hashPassword('correct horse')
 * // '$scrypt$ln=15,r=8,p=1$Qm9…$8xZ…'
 */
export async function hashPassword(password: string): Promise<string> {
  if (typeof password !== 'string') throw new TypeError('hashPassword: "password" must be a string')
  const salt = randomBytes(SALT_BYTES)
  const key = await derive(password, salt, LN, R, P, KEY_BYTES)
  return `$scrypt$ln=${LN},r=${R},p=${P}$${b64(salt)}$${b64(key)}`
}

/**
 * Check a password against a stored hash in constant time. Accepts scrypt
 * strings made by {@link hashPassword} (with whatever parameters they name)
 * and legacy 40-hex unsalted SHA-1 hashes of the UTF-8 password.
 * Malformed stored strings give `false`; this function never throws.
 *
 * @example
 * if (await verifyPassword(given, user.passwordHash)) {
 *   if (needsRehash(user.passwordHash)) user.passwordHash = await hashPassword(given)
 * }
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  if (typeof password !== 'string' || typeof stored !== 'string') return false
  if (SHA1_RE.test(stored)) {
    const expected = Buffer.from(stored, 'hex')
    const actual = createHash('sha1').update(password, 'utf8').digest()
    return timingSafeEqual(actual, expected)
  }
  const parsed = parseScrypt(stored)
  if (parsed === undefined) return false
  try {
    const actual = await derive(password, parsed.salt, parsed.ln, parsed.r, parsed.p, parsed.key.length)
    return timingSafeEqual(actual, parsed.key)
  } catch {
    return false
  }
}

/**
 * Whether a stored hash should be replaced by a fresh {@link hashPassword}
 * after the next successful verification: legacy SHA-1, malformed strings,
 * and scrypt hashes with weaker parameters, salt or key than the defaults.
 *
 * @example
 * if (ok && needsRehash(stored)) await saveHash(userId, await hashPassword(given))
 */
export function needsRehash(stored: string): boolean {
  if (typeof stored !== 'string') return true
  const parsed = parseScrypt(stored)
  if (parsed === undefined) return true
  return parsed.ln < LN || parsed.r < R || parsed.p < P || parsed.salt.length < SALT_BYTES || parsed.key.length < KEY_BYTES
}

// A fixed salt and key: the dummy check only has to cost what a real one does.
const DUMMY_SALT = Buffer.from('cloudsync-kit:dummy-salt', 'utf8').subarray(0, SALT_BYTES)
const DUMMY_KEY = Buffer.alloc(KEY_BYTES, 0x5a)

/**
 * Spend the time of one real verification and resolve `false`. Call it for
 * unknown user names so that a login attempt does not reveal, by its
 * duration, whether the account exists.
 *
 * @example
 * const user = findUser(name)
 * const ok = user === undefined ? await verifyDummy(password) : await verifyPassword(password, user.hash)
 */
export async function verifyDummy(password: string): Promise<false> {
  try {
    const actual = await derive(typeof password === 'string' ? password : '', DUMMY_SALT, LN, R, P, KEY_BYTES)
    timingSafeEqual(actual, DUMMY_KEY)
  } catch {
    // Nothing to report: the answer is false either way.
  }
  return false
}
