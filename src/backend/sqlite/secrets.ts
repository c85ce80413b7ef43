/**
 * Encryption at rest for object-store `data` (it holds repository passwords,
 * spec §4.5 / [D4]): AES-256-GCM with a random 96-bit nonce per value.
 *
 * The key lives in `<dataDir>/secret.key` (base64 text, mode 0600), created
 * on first start. Keep it with backups of the database: without it the
 * stored stores cannot be read. The database records an HMAC fingerprint of
 * the key so that a wrong or replaced key file is reported at start-up
 * instead of as failures on every read.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto'
import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'

const PREFIX = 'enc1:'
const IV_BYTES = 12
const TAG_BYTES = 16
const KEY_BYTES = 32
// Binds ciphertexts to their purpose: a value cannot be moved to another use.
const AAD = Buffer.from('cloudsync-kit/object-store-data/v1', 'utf8')

/**
 * AES-256-GCM encryption of short text values.
 *
 * @example
 * const box = new SecretBox(loadKey(join(dataDir, 'secret.key'), true))
 * box.decrypt(box.encrypt('{"password":"pw"}')) // '{"password":"pw"}'
 */
export class SecretBox {
  private readonly key: Buffer

  constructor(key: Buffer) {
    if (key.length !== KEY_BYTES) throw new Error(`An encryption key must be ${KEY_BYTES} bytes.`)
    this.key = key
  }

  /** A stable, non-reversible fingerprint of the key (HMAC-SHA-256 of a constant). */
  fingerprint(): string {
    return createHmac('sha256', this.key).update('cloudsync-kit key check').digest('base64')
  }

  /** Encrypt text into a self-describing `enc1:` string. */
  encrypt(plain: string): string {
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.key, iv)
    cipher.setAAD(AAD)
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()])
    return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')
  }

  /**
   * Decrypt a value made by {@link encrypt}. Values without the prefix are
   * returned unchanged: rows imported in plaintext stay readable.
   */
  decrypt(stored: string): string {
    if (!stored.startsWith(PREFIX)) return stored
    const raw = Buffer.from(stored.slice(PREFIX.length), 'base64')
    if (raw.length < IV_BYTES + TAG_BYTES) throw new Error('An encrypted object-store value is truncated; the database is damaged.')
    const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV_BYTES))
    decipher.setAAD(AAD)
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES))
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8')
  }
}

/**
 * Read the key file, or create it (0600) when absent and `mayCreate`.
 * Two processes starting together both end up with the one key written first.
 *
 * @example
 * const key = loadKey('/var/lib/cloudsync/secret.key', true)
 */
export function loadKey(file: string, mayCreate: boolean): Buffer {
  try {
    return parseKey(readFileSync(file, 'utf8'), file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (!mayCreate) {
    throw new Error(`The key file ${file} is missing, but the database holds encrypted object stores. Restore secret.key from the backup it was made with.`)
  }
  const key = randomBytes(KEY_BYTES)
  // Write aside, then link into place: link() fails if the name exists, so a
  // concurrent starter never reads a half-written key.
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  writeFileSync(temp, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' })
  try {
    linkSync(temp, file)
    return key
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    return parseKey(readFileSync(file, 'utf8'), file)
  } finally {
    unlinkSync(temp)
  }
}

function parseKey(text: string, file: string): Buffer {
  const key = Buffer.from(text.trim(), 'base64')
  if (key.length !== KEY_BYTES) {
    throw new Error(`The key file ${file} does not hold a ${KEY_BYTES}-byte base64 key. Restore it from backup.`)
  }
  return key
}
