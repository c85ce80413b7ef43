import t from 'tap'
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  lookupProviderAccounts, lookupSpaces, parseLookupParams, parseStoresXml, parseSpacesXml
} from '../src/resources/duracloud-lookup.js'
import {
  basicAuthorization, checkOutboundUrl, isHostAllowed, outboundPolicyFromEnv, parseAllowedHosts
} from '../src/resources/outbound.js'
import type { OutboundPolicy } from '../src/resources/outbound.js'
import { HttpError } from '../src/middleware/problem.js'

// ---------------------------------------------------------------------------
// A small fake DuraStore. The first path segment picks the behaviour.

interface Seen { method: string; url: string; authorization: string | undefined; accept: string | undefined }
const seen: Seen[] = []

// The documented DuraStore formats, with the whitespace, comments and
// namespace noise real servers send.
const STORES_XML = `<?xml version="1.0" encoding="UTF-8"?>
<!-- DuraStore storage accounts -->
<storageProviderAccounts>
  <storageAcct ownerId="0" isPrimary="1">
    <id>0</id>
    <storageProviderType>AMAZON_S3</storageProviderType>
  </storageAcct>
  <!-- secondary -->
  <storageAcct ownerId="0" isPrimary="0">
    <id> 1 </id>
    <storageProviderType>RACKSPACE</storageProviderType>
  </storageAcct>
  <storageAcct ownerId="0">
    <id>12</id>
    <storageProviderType>SDSC</storageProviderType>
  </storageAcct>
</storageProviderAccounts>
`

function spacesXml(storeId: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<spaces>
  <space id="fedora-backups" />
  <!-- a comment between spaces -->
  <space id="images-${storeId.replace(/[^a-z0-9]/gi, '_')}"></space>
  <other id="not-a-space"/>
  <space id="true" />
  <space id="0"/>
</spaces>`
}

function basicUser(req: IncomingMessage): [string, string] | undefined {
  const auth = req.headers.authorization
  if (auth === undefined || !auth.startsWith('Basic ')) return undefined
  const text = Buffer.from(auth.slice(6), 'base64').toString('utf8')
  const colon = text.indexOf(':')
  return colon === -1 ? undefined : [text.slice(0, colon), text.slice(colon + 1)]
}

const held: ServerResponse[] = []

function handle(req: IncomingMessage, res: ServerResponse): void {
  seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, accept: req.headers.accept })
  const url = new URL(req.url ?? '/', 'http://x')
  const [, mode, resource] = url.pathname.split('/')
  const xml = (status: number, body: string) => {
    res.writeHead(status, { 'Content-Type': 'application/xml' })
    res.end(body)
  }
  const creds = basicUser(req)
  switch (mode) {
    case 'durastore':
    case 'deep': {
      if (creds === undefined || creds[0] !== 'alice' || (creds[1] !== 's3cret' && creds[1] !== 'pässwörd €')) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="DuraStore"' })
        res.end()
        return
      }
      if (resource === 'stores') return xml(200, STORES_XML)
      if (resource === 'spaces') return xml(200, spacesXml(url.searchParams.get('storeID') ?? ''))
      return xml(404, '<error/>')
    }
    case 'concurrent': {
      // Answer after a random delay with an account named after the caller.
      const who = creds?.[0] ?? 'nobody'
      setTimeout(() => {
        xml(200, `<storageProviderAccounts><storageAcct isPrimary="1"><id>${who}</id>` +
          `<storageProviderType>${creds?.[1] ?? ''}</storageProviderType></storageAcct></storageProviderAccounts>`)
      }, Math.floor(Math.random() * 40))
      return
    }
    case 'fail': return xml(500, '<error>boom</error>')
    case 'garbage': return xml(200, 'this is { not XML')
    case 'html': return xml(200, '<html><head><title>Login</title></head><body><form id="x"/></body></html>')
    case 'empty': return xml(200, '')
    case 'tworoots': return xml(200, '<spaces/><spaces/>')
    case 'noid': return xml(200, '<storageProviderAccounts><storageAcct isPrimary="1"><storageProviderType>S3</storageProviderType></storageAcct></storageProviderAccounts>')
    case 'doctype':
      return xml(200, '<?xml version="1.0"?><!DOCTYPE spaces [<!ENTITY x SYSTEM "file:///etc/passwd">]>' +
        '<spaces><space id="&x;"/></spaces>')
    case 'redirect':
      res.writeHead(302, { Location: `http://127.0.0.1:${port}/durastore/${resource}` })
      res.end()
      return
    case 'big':
      res.writeHead(200, { 'Content-Type': 'application/xml' })
      res.end(`<spaces>${'<space id="a"/>'.repeat(2000)}</spaces>`)
      return
    case 'bigchunked':
      // No Content-Length: the cap must hold while streaming.
      res.writeHead(200, { 'Content-Type': 'application/xml' })
      res.write('<spaces>')
      res.write('<space id="a"/>'.repeat(2000))
      res.end('</spaces>')
      return
    case 'stall':
      held.push(res) // never answers
      return
    case 'stallbody':
      res.writeHead(200, { 'Content-Type': 'application/xml' })
      res.write('<spaces>')
      held.push(res)
      return
    default:
      return xml(404, '<error/>')
  }
}

let server: Server
let port = 0
let base = ''

t.before(async () => {
  server = createServer(handle)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  port = (server.address() as AddressInfo).port
  base = `http://127.0.0.1:${port}`
})
t.teardown(async () => {
  for (const res of held) res.destroy()
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

const open: OutboundPolicy = {}
const alice = { username: 'alice', password: 's3cret' }

async function rejection(p: Promise<unknown>): Promise<HttpError> {
  try {
    await p
  } catch (err) {
    if (err instanceof HttpError) return err
    throw err
  }
  throw new Error('expected the look-up to fail')
}

function since(mark: number): Seen[] {
  return seen.slice(mark)
}

// ---------------------------------------------------------------------------

t.test('provider accounts: documented DuraStore format, credentials, trailing slash', async (t) => {
  const mark = seen.length
  const accounts = await lookupProviderAccounts({ url: `${base}/durastore/`, ...alice }, open)
  t.same(accounts, [
    { id: '0', primary: true, type: 'AMAZON_S3' },
    { id: '1', primary: false, type: 'RACKSPACE' },
    { id: '12', primary: false, type: 'SDSC' }
  ], 'upstream order; isPrimary="1" only is primary; ids trimmed')
  t.equal(typeof accounts[0]!.id, 'string', 'ids stay strings (D21)')
  const [req] = since(mark)
  t.equal(req!.method, 'GET')
  t.equal(req!.url, '/durastore/stores', 'one trailing slash removed, /stores appended')
  t.equal(req!.authorization, basicAuthorization('alice', 's3cret'), 'preemptive Basic with the given credentials')
  t.match(req!.accept, /xml/)
})

t.test('several trailing slashes and a deeper base path', async (t) => {
  const mark = seen.length
  await lookupProviderAccounts({ url: `  ${base}/deep///  `, ...alice }, open)
  t.equal(since(mark)[0]!.url, '/deep/stores')
})

t.test('spaces: storeID encoded, order kept, non-space elements skipped', async (t) => {
  const mark = seen.length
  const id = 'a b&c=d/é?#'
  const spaces = await lookupSpaces({ url: `${base}/durastore`, ...alice, providerAccountId: ` ${id} ` }, open)
  t.same(spaces, [{ id: 'fedora-backups' }, { id: 'images-a_b_c_d____' }, { id: 'true' }, { id: '0' }])
  t.equal(typeof spaces[2]!.id, 'string')
  const [req] = since(mark)
  t.equal(req!.url, '/durastore/spaces?storeID=a%20b%26c%3Dd%2F%C3%A9%3F%23', 'parameters URL-encoded (D41)')
})

t.test('non-ASCII credentials are sent as UTF-8', async (t) => {
  const mark = seen.length
  await lookupSpaces({ url: `${base}/durastore`, username: 'alice', password: 'pässwörd €', providerAccountId: '0' }, open)
  const auth = since(mark)[0]!.authorization!
  t.equal(Buffer.from(auth.slice(6), 'base64').toString('utf8'), 'alice:pässwörd €')
})

t.test('missing or blank parameters are 400 naming the parameter', async (t) => {
  const url = `${base}/durastore`
  const cases: Array<[Record<string, string | undefined>, string]> = [
    [{ username: 'alice', password: 'x' }, 'url'],
    [{ url: ' \t', username: 'alice', password: 'x' }, 'url'],
    [{ url, password: 'x' }, 'username'],
    [{ url, username: '   ', password: 'x' }, 'username'],
    [{ url, username: 'alice' }, 'password'],
    [{ url, username: 'alice', password: '' }, 'password']
  ]
  const mark = seen.length
  for (const [params, name] of cases) {
    const err = await rejection(lookupProviderAccounts(params, open))
    t.equal(err.status, 400)
    t.equal(err.code, 'missing_parameter')
    t.match(err.detail, `"${name}"`)
  }
  const err = await rejection(lookupSpaces({ url, ...alice, providerAccountId: ' ' }, open))
  t.equal(err.status, 400)
  t.match(err.detail, '"providerAccountId"')
  t.equal(since(mark).length, 0, 'nothing was sent upstream')
})

t.test('url must be an absolute http(s) URL without credentials or query', async (t) => {
  const mark = seen.length
  for (const url of ['ftp://127.0.0.1/durastore', 'not a url', '/durastore', 'javascript:alert(1)', 'file:///etc/passwd',
    `http://alice:pw@127.0.0.1:${port}/durastore`, `${base}/durastore?x=1`, `${base}/durastore#frag`]) {
    const err = await rejection(lookupProviderAccounts({ url, ...alice }, open))
    t.equal(err.status, 400, url)
    t.equal(err.code, 'invalid_url', url)
  }
  const colon = await rejection(lookupProviderAccounts({ url: `${base}/durastore`, username: 'al:ice', password: 'x' }, open))
  t.equal(colon.status, 400)
  t.equal(colon.code, 'invalid_parameter')
  t.equal(since(mark).length, 0, 'nothing was sent upstream')
})

t.test('host allow-list', async (t) => {
  const url = `${base}/durastore`
  const mark = seen.length
  const denied = await rejection(lookupProviderAccounts({ url, ...alice }, { allowedHosts: ['durastore.example.org'] }))
  t.equal(denied.status, 400)
  t.equal(denied.code, 'host_not_allowed')
  t.match(denied.detail, 'CLOUDSYNC_OUTBOUND_HOSTS')
  const wrongPort = await rejection(lookupProviderAccounts({ url, ...alice }, { allowedHosts: [`127.0.0.1:${port === 1 ? 2 : 1}`] }))
  t.equal(wrongPort.code, 'host_not_allowed')
  t.equal(since(mark).length, 0, 'denied hosts are never contacted')

  t.same(await lookupProviderAccounts({ url, ...alice }, { allowedHosts: ['example.org', ' 127.0.0.1 '] }).then((a) => a.length), 3)
  t.same(await lookupProviderAccounts({ url, ...alice }, { allowedHosts: [`127.0.0.1:${port}`] }).then((a) => a.length), 3)

  t.ok(isHostAllowed(new URL('https://a.duracloud.org/durastore'), { allowedHosts: ['*.DuraCloud.org'] }))
  t.notOk(isHostAllowed(new URL('https://duracloud.org/durastore'), { allowedHosts: ['*.duracloud.org'] }), 'wildcard needs a subdomain')
  t.notOk(isHostAllowed(new URL('https://evilduracloud.org/'), { allowedHosts: ['*.duracloud.org'] }))
  t.ok(isHostAllowed(new URL('https://h.example.org/'), { allowedHosts: ['https://h.example.org/durastore'] }), 'a pasted URL works as an entry')
  t.ok(isHostAllowed(new URL('https://h.example.org/'), { allowedHosts: ['h.example.org:443'] }), 'default port counts as explicit')
  t.notOk(isHostAllowed(new URL('http://h.example.org/'), { allowedHosts: ['h.example.org:443'] }))
  t.ok(isHostAllowed(new URL('http://[::1]:8080/'), { allowedHosts: ['[::1]'] }))
  t.ok(isHostAllowed(new URL('http://0x7f.1/'), { allowedHosts: ['127.0.0.1'] }), 'hosts compared in normalized form')
  t.notOk(isHostAllowed(new URL('http://127.0.0.1/'), { allowedHosts: [] }), 'an empty list allows nothing')
})

t.test('allow-list from the environment', async (t) => {
  t.same(outboundPolicyFromEnv({}), {}, 'unset: any host')
  t.same(outboundPolicyFromEnv({ CLOUDSYNC_OUTBOUND_HOSTS: '  ' }), {}, 'blank: any host')
  t.same(outboundPolicyFromEnv({ CLOUDSYNC_OUTBOUND_HOSTS: 'a.example.org, ,*.duracloud.org' }),
    { allowedHosts: ['a.example.org', '*.duracloud.org'] })
  t.equal(parseAllowedHosts(undefined), undefined)
})

t.test('a malformed policy is a programming error (TypeError)', async (t) => {
  const url = new URL('http://h/')
  t.throws(() => isHostAllowed(url, { allowedHosts: ['http://'] }), TypeError)
  t.throws(() => isHostAllowed(url, { allowedHosts: 'h' as unknown as string[] }), TypeError)
  t.throws(() => isHostAllowed(url, { timeoutMs: 0 }), /timeoutMs/)
  t.throws(() => isHostAllowed(url, { maxResponseBytes: -1 }), /maxResponseBytes/)
  t.throws(() => isHostAllowed(url, { fetch: 'x' as unknown as typeof fetch }), /fetch/)
  t.throws(() => checkOutboundUrl('http://h/', { timeoutMs: Number.NaN }), TypeError)
})

t.test('upstream failures are 502, never 401', async (t) => {
  const cases: Array<[string, string]> = [
    ['fail', 'upstream_status'],
    ['garbage', 'upstream_unparsable'],
    ['html', 'upstream_unparsable'],
    ['empty', 'upstream_unparsable'],
    ['tworoots', 'upstream_unparsable'],
    ['noid', 'upstream_unparsable'],
    ['nowhere', 'upstream_status']
  ]
  for (const [mode, code] of cases) {
    const err = await rejection(lookupProviderAccounts({ url: `${base}/${mode}`, ...alice }, open))
    t.equal(err.status, 502, mode)
    t.equal(err.code, code, mode)
  }
  const wrong = await rejection(lookupProviderAccounts({ url: `${base}/durastore`, username: 'alice', password: 'wrong' }, open))
  t.equal(wrong.status, 502, 'upstream 401 becomes 502')
  t.equal(wrong.code, 'upstream_status')
  t.match(wrong.detail, /user name and password/)
})

t.test('DOCTYPE is refused and no entity is expanded (D46)', async (t) => {
  const err = await rejection(lookupSpaces({ url: `${base}/doctype`, ...alice, providerAccountId: '0' }, open))
  t.equal(err.status, 502)
  t.equal(err.code, 'upstream_unparsable')
  t.equal(parseSpacesXml('<!doctype spaces><spaces><space id="a"/></spaces>'), undefined)
})

t.test('redirects are not followed', async (t) => {
  const mark = seen.length
  const err = await rejection(lookupProviderAccounts({ url: `${base}/redirect`, ...alice }, open))
  t.equal(err.status, 502)
  t.match(err.detail, /redirect/)
  t.same(since(mark).map((s) => s.url), ['/redirect/stores'], 'the redirect target was not requested')
})

t.test('oversized answers are cut off', async (t) => {
  for (const mode of ['big', 'bigchunked']) {
    const err = await rejection(lookupSpaces({ url: `${base}/${mode}`, ...alice, providerAccountId: '0' }, { maxResponseBytes: 4096 }))
    t.equal(err.status, 502, mode)
    t.equal(err.code, 'upstream_too_large', mode)
  }
  const ok = await lookupSpaces({ url: `${base}/big`, ...alice, providerAccountId: '0' }, open)
  t.equal(ok.length, 2000, 'the default cap allows ordinary lists')
})

t.test('timeouts: no answer, and an answer that stalls mid-body', async (t) => {
  for (const mode of ['stall', 'stallbody']) {
    const started = Date.now()
    const err = await rejection(lookupSpaces({ url: `${base}/${mode}`, ...alice, providerAccountId: '0' }, { timeoutMs: 250 }))
    t.equal(err.status, 502, mode)
    t.equal(err.code, 'upstream_timeout', mode)
    t.ok(Date.now() - started < 3000, `${mode}: gave up promptly`)
  }
})

t.test('unreachable port is 502', async (t) => {
  const closed = createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const deadPort = (closed.address() as AddressInfo).port
  await new Promise<void>((resolve) => closed.close(() => resolve()))
  const err = await rejection(lookupProviderAccounts({ url: `http://127.0.0.1:${deadPort}/durastore`, ...alice }, open))
  t.equal(err.status, 502)
  t.equal(err.code, 'upstream_unreachable')
  t.match(err.detail, `127.0.0.1:${deadPort}`)
})

t.test('a custom fetch is used, and TLS errors map to 502', async (t) => {
  const calls: string[] = []
  const failing: typeof fetch = async (input) => {
    calls.push(String(input))
    throw new TypeError('fetch failed', { cause: Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }) })
  }
  const err = await rejection(lookupProviderAccounts({ url: 'https://durastore.example.org/durastore', ...alice }, { fetch: failing }))
  t.equal(err.status, 502)
  t.equal(err.code, 'upstream_unreachable')
  t.same(calls, ['https://durastore.example.org/durastore/stores'])
})

t.test('concurrent look-ups never mix credentials (D33)', async (t) => {
  const n = 30
  const results = await Promise.all(Array.from({ length: n }, (_, i) =>
    lookupProviderAccounts({ url: `${base}/concurrent`, username: `user${i}`, password: `pw${i}` }, open)))
  results.forEach((accounts, i) => {
    t.same(accounts, [{ id: `user${i}`, primary: true, type: `pw${i}` }], `look-up ${i} got its own answer`)
  })
})

t.test('parseLookupParams: query string, form body or parsed object', async (t) => {
  const q = new URLSearchParams('url=https%3A%2F%2Fh%2Fdurastore&username=a+b&password=p%26w&password=second&providerAccountId=0&other=x')
  t.same(parseLookupParams(q), { url: 'https://h/durastore', username: 'a b', password: 'p&w', providerAccountId: '0' })
  t.same(parseLookupParams(new URLSearchParams('')), {})
  t.same(parseLookupParams({ url: 'https://h', username: ['u', 'v'], password: 7, providerAccountId: [1, '2'] }),
    { url: 'https://h', username: 'u', providerAccountId: '2' }, 'non-string values are ignored')
  t.same(parseLookupParams(JSON.parse('{"__proto__": {"url": "x"}}') as Record<string, unknown>), {}, 'inherited values are not read')
})

t.test('parsers: entities, namespaces, malformed input', async (t) => {
  t.same(parseStoresXml('<ns:accounts xmlns:ns="urn:x"><ns:acct isPrimary="1"><ns:id>0</ns:id>' +
    '<ns:storageProviderType>A&amp;B &#65;&#x42;</ns:storageProviderType></ns:acct></ns:accounts>'),
  [{ id: '0', primary: true, type: 'A&B AB' }])
  t.same(parseSpacesXml('<spaces>\n</spaces>'), [], 'an empty list is valid')
  t.same(parseSpacesXml('<spaces><space id="a&lt;b"/></spaces>'), [{ id: 'a<b' }])
  t.equal(parseSpacesXml('<spaces><space/></spaces>'), undefined, 'a space without id')
  t.equal(parseSpacesXml('<spaces><space id="a"></spaces>'), undefined, 'malformed')
  t.equal(parseStoresXml('<accounts><acct><id>0</id></acct></accounts>'), undefined, 'an account without type')
  t.equal(parseStoresXml(''), undefined)
  t.same(parseStoresXml('<accounts/>'), [])
})
