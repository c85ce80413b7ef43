import t from 'tap'
import { createHash, scryptSync } from 'node:crypto'
import { createServer, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { hashPassword, needsRehash, verifyDummy, verifyPassword } from '../src/middleware/password.js'

const b64 = (buf: Buffer) => buf.toString('base64').replace(/=+$/, '')

/** A PHC scrypt string made independently of the module under test. */
function phc(password: string, ln: number, r: number, p: number, saltBytes = 16, keyBytes = 32): string {
  const salt = Buffer.alloc(saltBytes, 7)
  const key = scryptSync(password, salt, keyBytes, { N: 2 ** ln, r, p, maxmem: 512 * 1024 * 1024 })
  return `$scrypt$ln=${ln},r=${r},p=${p}$${b64(salt)}$${b64(key)}`
}

t.test('hashPassword produces a salted, self-describing scrypt string', async (t) => {
  const a = await hashPassword('correct horse')
  const b = await hashPassword('correct horse')
  t.match(a, /^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/)
  t.not(a, b, 'same password, different salt, different hash')
  // The stored key is really scrypt(N=2^15, r=8, p=1) of the UTF-8 password.
  const [, , , salt, key] = a.split('$')
  const expected = scryptSync(Buffer.from('correct horse', 'utf8'), Buffer.from(salt!, 'base64'), 32, { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 })
  t.equal(key, b64(expected))
  t.equal(needsRehash(a), false)
})

t.test('verifyPassword accepts the right password only', async (t) => {
  const stored = await hashPassword('pässwörd ✓')
  t.equal(await verifyPassword('pässwörd ✓', stored), true)
  t.equal(await verifyPassword('pässwörd', stored), false)
  t.equal(await verifyPassword('PÄSSWÖRD ✓', stored), false)
  t.equal(await verifyPassword('', stored), false)
  const empty = await hashPassword('')
  t.equal(await verifyPassword('', empty), true)
  t.equal(await verifyPassword(' ', empty), false)
})

t.test('parameters are read from the stored string', async (t) => {
  const weak = phc('secret', 10, 8, 1)
  t.equal(await verifyPassword('secret', weak), true)
  t.equal(await verifyPassword('Secret', weak), false)
  t.equal(needsRehash(weak), true, 'weaker cost needs a rehash')
  t.equal(needsRehash(phc('secret', 15, 4, 1)), true, 'weaker r needs a rehash')
  t.equal(needsRehash(phc('secret', 15, 8, 1, 8)), true, 'short salt needs a rehash')
  t.equal(needsRehash(phc('secret', 15, 8, 1, 16, 16)), true, 'short key needs a rehash')
  const strong = phc('secret', 16, 8, 1)
  t.equal(await verifyPassword('secret', strong), true)
  t.equal(needsRehash(strong), false, 'stronger parameters are kept')
  // Padded base64 from other PHC writers is accepted too.
  const padded = weak.replace(/\$([^$]+)\$([^$]+)$/, (_, s: string, k: string) => `$${s}==$${k}=`)
  t.equal(await verifyPassword('secret', padded), true)
})

t.test('legacy unsalted SHA-1 hashes verify and need a rehash', async (t) => {
  const sha1 = (s: string) => createHash('sha1').update(s, 'utf8').digest('hex')
  const legacy = sha1('tëst')
  t.equal(await verifyPassword('tëst', legacy), true)
  t.equal(await verifyPassword('tëst', legacy.toUpperCase()), true)
  t.equal(await verifyPassword('test', legacy), false)
  t.equal(needsRehash(legacy), true)
})

t.test('malformed stored strings give false, never throw', async (t) => {
  const good = await hashPassword('pw')
  const bad = [
    '',
    'plain',
    'a'.repeat(39),
    'g'.repeat(40),
    '$scrypt$',
    good.replace('ln=15', 'ln=99'),
    good.replace('ln=15', 'ln=0'),
    good.replace('r=8', 'r=0'),
    good.replace('p=1', 'p=77'),
    '$scrypt$ln=20,r=32,p=1$' + b64(Buffer.alloc(16)) + '$' + b64(Buffer.alloc(32)), // 4 GiB: refused, not attempted
    good.slice(0, good.lastIndexOf('$')),
    good.slice(0, good.lastIndexOf('$') + 10),
    good + '$extra',
    good.replace(/\$[^$]+\$([^$]+)$/, '$!!!!!!!!!!!!!!!!!!!!!!$$1'),
    '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo'
  ]
  for (const stored of bad) {
    t.equal(await verifyPassword('pw', stored), false, JSON.stringify(stored))
    t.equal(needsRehash(stored), true, `needsRehash ${JSON.stringify(stored)}`)
  }
  t.equal(await verifyPassword('pw', undefined as unknown as string), false)
  t.equal(await verifyPassword(undefined as unknown as string, good), false)
  t.equal(needsRehash(null as unknown as string), true)
  await t.rejects(hashPassword(42 as unknown as string), TypeError)
})

t.test('verifyDummy is false and costs about as much as a real check', async (t) => {
  const stored = await hashPassword('pw')
  t.equal(await verifyDummy('pw'), false)
  t.equal(await verifyDummy(undefined as unknown as string), false)
  let real = 0
  let dummy = 0
  // Interleaved so that machine load affects both sides alike.
  for (let i = 0; i < 3; i++) {
    let start = process.hrtime.bigint()
    await verifyPassword('wrong', stored)
    real += Number(process.hrtime.bigint() - start)
    start = process.hrtime.bigint()
    await verifyDummy('wrong')
    dummy += Number(process.hrtime.bigint() - start)
  }
  const ratio = dummy / real
  t.ok(ratio > 0.33 && ratio < 3, `dummy/real time ratio ${ratio.toFixed(2)} should be near 1`)
})

t.test('a Basic-auth server built on it answers the same for unknown users and wrong passwords', async (t) => {
  const users = new Map([['alice', await hashPassword('wonderland')]])
  const server = createServer((req, res) => {
    void (async () => {
      const header = req.headers.authorization ?? ''
      const [name = '', password = ''] = Buffer.from(header.replace(/^Basic /, ''), 'base64').toString('utf8').split(':')
      const stored = users.get(name)
      const ok = stored === undefined ? await verifyDummy(password) : await verifyPassword(password, stored)
      res.statusCode = ok ? 200 : 401
      res.end(ok ? 'hello' : 'Check the user name and password, then try again.')
    })()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const port = (server.address() as AddressInfo).port
  const get = (user: string, pass: string) => new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', headers: { Authorization: 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64') } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end()
  })
  t.same(await get('alice', 'wonderland'), { status: 200, body: 'hello' })
  const wrong = await get('alice', 'nope')
  const unknown = await get('bob', 'wonderland')
  t.equal(wrong.status, 401)
  t.same(unknown, wrong, 'same answer whether the user exists or not')
})
