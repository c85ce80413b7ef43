/** DuraCloud look-ups through the API (spec §4.8, ops #27–#30) against a local DuraStore stand-in. */
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { startTestServer } from './helpers/server.js'
import { vj, vx } from './helpers/media.js'

interface Seen { url: string; authorization: string | undefined }

async function duraStore(t: { teardown(fn: () => unknown): void }, seen: Seen[]): Promise<string> {
  const server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', authorization: req.headers.authorization })
    res.setHeader('Content-Type', 'application/xml')
    if (req.url === '/durastore/stores') {
      res.end('<?xml version="1.0"?>\n<storageProviderAccounts>\n  <!-- accounts -->\n  <storageAcct isPrimary="1">\n    <id>0</id>\n    <storageProviderType>AMAZON_S3</storageProviderType>\n  </storageAcct>\n  <storageAcct isPrimary="0"><id>1</id><storageProviderType>RACKSPACE</storageProviderType></storageAcct>\n</storageProviderAccounts>')
    } else if (req.url?.startsWith('/durastore/spaces?storeID=')) {
      res.end('<spaces>\n <space id="fedora-backups"/>\n <space id="2012"/>\n</spaces>')
    } else if (req.url === '/broken/stores') {
      res.statusCode = 500
      res.end('oops')
    } else {
      res.end('<not-closed')
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

t.test('provider accounts and spaces, GET and form POST', async (t) => {
  const seen: Seen[] = []
  const origin = await duraStore(t, seen)
  const s = await startTestServer(t, { taskManager: false })
  const q = (params: Record<string, string>) => new URLSearchParams(params).toString()
  let r = await s.admin('GET', `/api/rest/duracloud/providerAccounts.json?${q({ url: `${origin}/durastore/`, username: 'dura user', password: 'p&w' })}`)
  t.equal(r.status, 200)
  t.same(r.json(), { providerAccounts: [{ id: '0', primary: true, type: 'AMAZON_S3' }, { id: '1', primary: false, type: 'RACKSPACE' }] }, 'ids stay strings [D21]')
  t.equal(seen.at(-1)!.authorization, 'Basic ' + Buffer.from('dura user:p&w').toString('base64'), 'preemptive Basic with the given credentials')
  r = await s.admin('POST', '/api/rest/duracloud/spaces', {
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: vx('spaces') },
    body: q({ url: `${origin}/durastore`, username: 'u', password: 'p', providerAccountId: '0 1' })
  })
  t.equal(r.status, 200)
  t.equal(r.headers['content-type'], vx('spaces'))
  t.match(r.text, /<spaces><space><id>fedora-backups<\/id><\/space><space><id>2012<\/id><\/space><\/spaces>/)
  t.equal(seen.at(-1)!.url, '/durastore/spaces?storeID=0%201', 'parameters are encoded [D41]')
  r = await s.admin('GET', `/api/rest/duracloud/spaces?${q({ url: `${origin}/durastore`, username: 'u', password: 'p', providerAccountId: '0' })}`, { headers: { Accept: vj('spaces') } })
  t.equal(r.headers['content-type'], vj('spaces'))

  // 400: missing parameter, bad URL; 502: upstream failure or garbage; 415 for JSON bodies.
  t.equal((await s.admin('GET', `/api/rest/duracloud/providerAccounts?${q({ url: `${origin}/durastore`, username: 'u' })}`)).status, 400)
  t.equal((await s.admin('GET', `/api/rest/duracloud/providerAccounts?${q({ url: 'file:///etc/passwd', username: 'u', password: 'p' })}`)).status, 400)
  r = await s.admin('GET', `/api/rest/duracloud/providerAccounts?${q({ url: `${origin}/broken`, username: 'u', password: 'p' })}`)
  t.equal(r.status, 502, 'upstream 500 → 502, never 401')
  t.match(r.json().detail, /500/)
  t.equal((await s.admin('GET', `/api/rest/duracloud/providerAccounts?${q({ url: `${origin}/garbage`, username: 'u', password: 'p' })}`)).status, 502)
  t.equal((await s.admin('POST', '/api/rest/duracloud/spaces', { headers: { 'Content-Type': 'application/json' }, body: '{}' })).status, 415)
  t.equal((await s.req('GET', `/api/rest/duracloud/spaces?${q({ url: origin, username: 'u', password: 'p', providerAccountId: '0' })}`)).status, 401)
})

t.test('outbound host allow-list (CLOUDSYNC_OUTBOUND_HOSTS)', async (t) => {
  const origin = await duraStore(t, [])
  const s = await startTestServer(t, { taskManager: false, outboundHosts: ['duracloud.example.org'] })
  const r = await s.admin('GET', `/api/rest/duracloud/providerAccounts?url=${encodeURIComponent(origin + '/durastore')}&username=u&password=p`)
  t.equal(r.status, 400, 'a host outside the allow-list is refused [D6]')
})
