import t from 'tap'
import { createHash } from 'node:crypto'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import { duracloudConnector, encodeItemId } from '../src/backend/stores/duracloud.js'
import { parseChunksManifest, parseItemList } from '../src/backend/stores/duracloud-xml.js'
import type { DuracloudConnectorOptions } from '../src/backend/stores/duracloud.js'
import { QUERY_UNSUPPORTED } from '../src/backend/stores/filesystem.js'
import { parseFoxml, serializeFoxml } from '../src/backend/stores/foxml.js'
import type { FoxmlObject } from '../src/backend/stores/foxml.js'
import type { ContentSource, ObjectSetSpec, ObjectStoreConnector } from '../src/backend/stores/types.js'
import { startFakeDuraCloud } from './helpers/fake-duracloud.js'
import type { FakeDuraCloud } from './helpers/fake-duracloud.js'

type T = { teardown(fn: () => unknown): void }

async function fake(t: T, options: Parameters<typeof startFakeDuraCloud>[0] = {}): Promise<FakeDuraCloud> {
  const server = await startFakeDuraCloud(options)
  t.teardown(() => server.close())
  return server
}

function connect(server: FakeDuraCloud, extra: Partial<DuracloudConnectorOptions> = {}): ObjectStoreConnector {
  return duracloudConnector({
    url: server.url,
    username: 'alice',
    password: 's3cret',
    providerId: '0',
    space: 'fedora',
    retryPauseMs: 1,
    retryMaxPauseMs: 4,
    ...extra,
  })
}

async function collect(store: ObjectStoreConnector, set: ObjectSetSpec, signal = new AbortController().signal): Promise<string[]> {
  const out: string[] = []
  for await (const pid of store.enumerate(set, signal)) out.push(pid)
  return out
}

const md5 = (b: Uint8Array): string => createHash('md5').update(b).digest('hex')

function bytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size)
  let block = createHash('sha256').update(seed).digest()
  for (let i = 0; i < size; i++) {
    if (i % 32 === 0) block = createHash('sha256').update(block).digest()
    out[i] = block[i % 32]!
  }
  return out
}

/** An object with inline DC and the given managed versions (`dsId+versionId` → content). */
function makeObject(pid: string, managed: Record<string, Buffer>, label = 'first'): { obj: FoxmlObject; contents: ContentSource; asked: string[] } {
  const byDs = new Map<string, string[]>()
  for (const key of Object.keys(managed)) {
    const [dsId, versionId] = key.split('+') as [string, string]
    byDs.set(dsId, [...(byDs.get(dsId) ?? []), versionId])
  }
  const obj: FoxmlObject = {
    pid,
    properties: [{ name: 'info:fedora/fedora-system:def/model#label', value: label }],
    extProperties: [],
    datastreams: [
      {
        id: 'DC',
        controlGroup: 'X',
        versions: [{ id: 'DC.0', mimeType: 'text/xml', xmlContent: '<dc>x &amp; y</dc>' }],
      },
      ...[...byDs].map(([dsId, versions]) => ({
        id: dsId,
        controlGroup: 'M' as const,
        versions: versions.map((id) => ({ id, mimeType: dsId === 'IMG' ? 'image/png' : 'application/pdf', created: '2011-11-02T10:00:00.000Z' })),
      })),
    ],
  }
  const asked: string[] = []
  const contents: ContentSource = async (dsId, versionId) => {
    asked.push(`${dsId}+${versionId}`)
    const data = managed[`${dsId}+${versionId}`]
    if (data === undefined) throw new Error(`no content for ${dsId}+${versionId}`)
    // Several pieces, so spooling and chunking see piece boundaries.
    const pieces: Buffer[] = []
    for (let i = 0; i < data.length; i += 7) pieces.push(data.subarray(i, i + 7))
    return Readable.from(pieces)
  }
  return { obj, contents, asked }
}

/** Method and id of each recorded request, e.g. `PUT demo:1+IMG+IMG.0`. */
function calls(server: FakeDuraCloud, from = 0): string[] {
  return server.requests.slice(from).map((r) => `${r.method} ${r.id ?? '(space)'}`)
}

t.test('options are checked, the description holds no password', async (t) => {
  const base = { url: 'http://h/durastore', username: 'u', password: 'pw-secret', providerId: '0', space: 's' }
  t.throws(() => duracloudConnector({ ...base, url: 'ftp://h/x' }), /"url"/)
  t.throws(() => duracloudConnector({ ...base, url: 'not a url' }), /"url"/)
  t.throws(() => duracloudConnector({ ...base, url: 'http://u:p@h/durastore' }), /credentials/)
  t.throws(() => duracloudConnector({ ...base, space: ' ' }), /"space"/)
  t.throws(() => duracloudConnector({ ...base, providerId: '' }), /"providerId"/)
  t.throws(() => duracloudConnector({ ...base, chunkSize: 0 }), /"chunkSize"/)
  t.throws(() => duracloudConnector({ ...base, pageSize: 1.5 }), /"pageSize"/)
  t.throws(() => duracloudConnector({ ...base, putRetries: -1 }), /"putRetries"/)
  t.throws(() => duracloudConnector({ ...base, signal: {} as never }), /"signal"/)
  t.throws(() => duracloudConnector(undefined as never), TypeError)
  const store = duracloudConnector({ ...base, url: 'http://h/durastore///' })
  t.match(store.description, 'http://h/durastore (space s, store 0)')
  t.notMatch(store.description, 'pw-secret')
})

t.test('ids and XML formats', async (t) => {
  t.equal(encodeItemId('demo:1+DC+DC.0', ''), 'demo%3A1%2BDC%2BDC.0')
  t.equal(encodeItemId('fedora/x/demo:1', 'fedora/x/'), 'fedora/x/demo%3A1', 'a prefix with / stays a path')
  t.equal(encodeItemId('p/a/../b:1', 'p/'), 'p/a%2F..%2Fb%3A1', 'a PID is one segment')
  t.equal(encodeItemId('a b?#%é\uD800', ''), 'a%20b%3F%23%25%C3%A9%EF%BF%BD')
  t.throws(() => encodeItemId('..', ''), /cannot be used in a DuraStore URL/)
  t.throws(() => encodeItemId('p/.', 'p/'), /"\." or "\.\." path segment/)
  t.same(parseItemList('<space id="s">\n <item>a&amp;b</item><!-- c --><item>demo:1</item>\n</space>'), ['a&b', 'demo:1'])
  t.same(parseItemList('<space id="s"/>'), [])
  t.same(parseItemList('<space id="s">\n  <item>\n    demo:1\n  </item>\n</space>'), ['demo:1'], 'ids of a pretty-printed listing are trimmed')
  t.equal(parseItemList('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><space><item>&e;</item></space>'), undefined, 'no DTDs [D46]')
  t.equal(parseItemList('<space><item>cut'), undefined)
  // The manifest as DuraCloud's chunking tools write it: prefixed root, unprefixed children.
  const manifest = `<?xml version="1.0" encoding="UTF-8"?>
<dur:chunksManifest xmlns:dur="duracloud.org">
  <header schemaVersion="0.2">
    <sourceContent contentId="big"><mimetype>video/mp4</mimetype><byteSize>5</byteSize><md5>x</md5></sourceContent>
  </header>
  <chunks>
    <chunk chunkId="big.dura-chunk-0001" index="1"><byteSize>2</byteSize><md5>ab</md5></chunk>
    <chunk chunkId="big.dura-chunk-0000" index="0"><byteSize>3</byteSize><md5>cd</md5></chunk>
  </chunks>
</dur:chunksManifest>`
  t.same(parseChunksManifest(manifest), [
    { id: 'big.dura-chunk-0000', index: 0, size: 3, md5: 'cd' },
    { id: 'big.dura-chunk-0001', index: 1, size: 2, md5: 'ab' },
  ], 'in index order')
  t.match(parseChunksManifest(manifest.replace('index="1"', 'index="0"')), /index 1/)
  t.match(parseChunksManifest('<chunksManifest><chunks/></chunksManifest>'), /no chunks/)
  t.match(parseChunksManifest('<other/>'), /not a chunksManifest/)
})

t.test('exists: 200, 404, anything else is an error [D47]', async (t) => {
  const server = await fake(t)
  const store = connect(server)
  server.items.set('demo:1', { body: Buffer.from('<x/>'), contentType: 'application/xml' })
  t.equal(await store.exists('demo:1'), true)
  t.equal(await store.exists('demo:2'), false)
  server.fail({ method: 'HEAD', id: 'demo:1', status: 500 })
  await t.rejects(store.exists('demo:1'), /DuraCloud at http:\/\/127\.0\.0\.1:\d+\/durastore answered 500 to HEAD fedora\/demo%3A1: the DuraCloud server failed; try again later\./)
  const wrong = connect(server, { password: 'wrong-password' })
  await t.rejects(wrong.exists('demo:1'), /answered 401 to HEAD fedora\/demo%3A1: check the store's username and password/)
  await wrong.exists('demo:1').catch((err: Error) => t.notMatch(err.message, 'wrong-password', 'no password in messages'))
  const badStore = connect(server, { providerId: '7' })
  await t.rejects(badStore.exists('demo:1'), /answered 400 .*provider id \(7\)/)
  const first = server.requests.find((r) => r.method === 'HEAD')!
  t.equal(first.authorization, `Basic ${Buffer.from('alice:s3cret').toString('base64')}`, 'credentials on the first request (preemptive)')
  t.ok(server.requests.every((r) => r.authorization?.startsWith('Basic ')), 'credentials on every request')
  t.ok(server.requests.filter((r) => r.authorization !== `Basic ${Buffer.from('alice:wrong-password').toString('base64')}`).every((r) => r.query.storeID !== undefined), 'storeID on every request')
})

t.test('unreachable server and timeouts say what failed', async (t) => {
  const server = await fake(t)
  const down = duracloudConnector({ url: 'http://127.0.0.1:1/durastore', username: 'a', password: 'b', providerId: '0', space: 's' })
  await t.rejects(down.exists('demo:1'), /could not be reached for HEAD s\/demo%3A1 .*check the URL and that the server is running/)
  const slow = connect(server, { timeoutMs: 50 })
  server.fail({ method: 'GET', id: 'demo:1', status: 'hang' })
  await t.rejects(slow.readObject('demo:1'), /did not answer GET fedora\/demo%3A1 within 1 seconds/)
})

t.test('write new, read back, skip existing, replace', async (t) => {
  const server = await fake(t)
  const store = connect(server, { prefix: 'cs/', memorySpoolBytes: 100 })
  const img0 = bytes('img0', 50)
  const img1 = bytes('img1', 5000) // spooled to a file
  const pdf = bytes('pdf', 0)
  const { obj, contents, asked } = makeObject('demo:1', { 'IMG+IMG.0': img0, 'IMG+IMG.1': img1, 'PDF+PDF.0': pdf })

  t.equal(await store.writeObject(obj, contents, { overwrite: false }), 'new')
  t.same(asked, ['IMG+IMG.0', 'IMG+IMG.1', 'PDF+PDF.0'])
  t.same(calls(server), [
    'HEAD cs/demo:1',
    'PUT cs/demo:1+IMG+IMG.0',
    'PUT cs/demo:1+IMG+IMG.1',
    'PUT cs/demo:1+PDF+PDF.0',
    'PUT cs/demo:1',
  ], 'existence check, content first, object last')
  const puts = server.requests.filter((r) => r.method === 'PUT')
  t.same(puts.map((r) => r.contentType), ['image/png', 'image/png', 'application/pdf', 'application/xml'])
  t.same(puts.slice(0, 3).map((r) => r.contentMd5), [md5(img0), md5(img1), md5(pdf)], 'lower-case hex MD5')
  t.same(puts.slice(0, 3).map((r) => r.contentLength), ['50', '5000', '0'])
  t.equal(puts[3]!.contentMd5, md5(server.items.get('cs/demo:1')!.body))
  t.ok(server.requests.every((r) => r.rawPath.startsWith('/durastore/fedora/cs/demo%3A1') && r.query.storeID === '0'))
  t.same(await readdir(tmpdir()).then((names) => names.filter((n) => n.startsWith('cloudsync-duracloud-'))), [], 'spool files removed')

  const foxml = server.items.get('cs/demo:1')!.body.toString('utf8')
  t.match(foxml, 'REF="demo:1+IMG+IMG.1"', 'managed content recorded where this store keeps it')
  const read = await store.readObject('demo:1')
  t.equal(read?.pid, 'demo:1')
  t.same(read?.datastreams[0]?.versions[0]?.xmlContent, '<dc>x &amp; y</dc>')
  t.same(await buffer((await store.readContent('demo:1', 'IMG', 'IMG.1'))!), img1)
  t.same(await buffer((await store.readContent('demo:1', 'PDF', 'PDF.0'))!), pdf)
  t.equal(await store.readContent('demo:1', 'IMG', 'IMG.9'), undefined, 'absent: neither item nor manifest')
  t.equal(await store.readObject('demo:2'), undefined)

  let from = server.requests.length
  asked.length = 0
  t.equal(await store.writeObject(obj, contents, { overwrite: false }), 'skipped')
  t.same(calls(server, from), ['HEAD cs/demo:1'], 'a skip only asks')
  t.same(asked, [])

  // Replace with one version fewer and a new one.
  from = server.requests.length
  const img2 = bytes('img2', 30)
  const next = makeObject('demo:1', { 'IMG+IMG.0': img0, 'IMG+IMG.2': img2 }, 'second')
  t.equal(await store.writeObject(next.obj, next.contents, { overwrite: true }), 'replaced')
  t.same(calls(server, from), [
    'HEAD cs/demo:1',
    'HEAD cs/demo:1+IMG+IMG.0',
    'PUT cs/demo:1+IMG+IMG.0',
    'HEAD cs/demo:1+IMG+IMG.2',
    'PUT cs/demo:1+IMG+IMG.2',
    'PUT cs/demo:1',
    'GET (space)',
    'DELETE cs/demo:1+PDF+PDF.0',
    'DELETE cs/demo:1+IMG+IMG.1',
  ], 'content, object, then the old object\'s content the new one does not have')
  t.equal(server.requests.at(-3)!.query.prefix, 'cs/demo:1+')
  t.same([...server.items.keys()].sort(), ['cs/demo:1', 'cs/demo:1+IMG+IMG.0', 'cs/demo:1+IMG+IMG.2'])
  t.equal((await store.readObject('demo:1'))?.properties[0]?.value, 'second')
})

t.test('a replace on a server that ignores "prefix" deletes only the old object\'s content', async (t) => {
  const server = await fake(t, { ignorePrefix: true })
  const store = connect(server)
  await store.writeObject(makeObject('demo:1', { 'IMG+IMG.0': bytes('a', 5), 'IMG+IMG.1': bytes('b', 5) }).obj, makeObject('demo:1', { 'IMG+IMG.0': bytes('a', 5), 'IMG+IMG.1': bytes('b', 5) }).contents, { overwrite: false })
  const other = makeObject('demo:10', { 'IMG+IMG.0': bytes('c', 5) })
  await store.writeObject(other.obj, other.contents, { overwrite: false })
  const next = makeObject('demo:1', { 'IMG+IMG.0': bytes('a', 5) }, 'second')
  t.equal(await store.writeObject(next.obj, next.contents, { overwrite: true }), 'replaced')
  t.same([...server.items.keys()].sort(), ['demo:1', 'demo:1+IMG+IMG.0', 'demo:10', 'demo:10+IMG+IMG.0'], 'the new object and everything else in the space stay')
})

t.test('chunks named without the store prefix (as older manifests name them) are found under it', async (t) => {
  const server = await fake(t)
  const store = connect(server, { prefix: 'cs/', chunkSize: 10 })
  const big = bytes('big', 25)
  const { obj, contents } = makeObject('demo:1', { 'IMG+IMG.0': big })
  await store.writeObject(obj, contents, { overwrite: false })
  const manifest = server.items.get('cs/demo:1+IMG+IMG.0.dura-manifest')!
  manifest.body = Buffer.from(manifest.body.toString('utf8').replaceAll('chunkId="cs/', 'chunkId="'))
  t.notMatch(manifest.body.toString('utf8'), 'chunkId="cs/', 'the manifest now names chunks without the prefix')
  t.same(await buffer((await store.readContent('demo:1', 'IMG', 'IMG.0'))!), big)
})

t.test('reading errors', async (t) => {
  const server = await fake(t)
  const store = connect(server)
  server.items.set('bad:1', { body: Buffer.from('<foxml:digitalObject PID="bad:1">'), contentType: 'application/xml' })
  await t.rejects(store.readObject('bad:1'), /item bad:1 .* is not valid FOXML 1\.1/)
  const { obj } = makeObject('demo:1', {})
  server.items.set('other:1', { body: Buffer.from(serializeFoxml(obj)), contentType: 'application/xml' })
  await t.rejects(store.readObject('other:1'), /declares the PID demo:1/)
  server.fail({ method: 'GET', id: 'demo:1+IMG+IMG.0', status: 503 })
  await t.rejects(store.readContent('demo:1', 'IMG', 'IMG.0'), /answered 503 to GET fedora\/demo%3A1%2BIMG%2BIMG\.0/)
  server.fail({ method: 'GET', id: 'x:1', status: 302 })
  await t.rejects(store.readObject('x:1'), /answered 302 .*redirected/)
})

t.test('large content: DuraCloud chunk format, read back through the manifest', async (t) => {
  const server = await fake(t)
  const store = connect(server, { chunkSize: 10, memorySpoolBytes: 15 })
  const exact = bytes('exact', 10)
  const big = bytes('big', 25)
  const { obj, contents } = makeObject('demo:1', { 'IMG+IMG.0': exact, 'IMG+IMG.1': big })
  t.equal(await store.writeObject(obj, contents, { overwrite: false }), 'new')
  t.same(calls(server), [
    'HEAD demo:1',
    'PUT demo:1+IMG+IMG.0',
    'PUT demo:1+IMG+IMG.1.dura-chunk-0000',
    'PUT demo:1+IMG+IMG.1.dura-chunk-0001',
    'PUT demo:1+IMG+IMG.1.dura-chunk-0002',
    'PUT demo:1+IMG+IMG.1.dura-manifest',
    'PUT demo:1',
  ], 'content of exactly the chunk size is not chunked')
  const chunkPuts = server.requests.filter((r) => r.id?.includes('.dura-chunk-'))
  t.same(chunkPuts.map((r) => r.contentMd5), [md5(big.subarray(0, 10)), md5(big.subarray(10, 20)), md5(big.subarray(20))])
  const manifest = server.items.get('demo:1+IMG+IMG.1.dura-manifest')!.body.toString('utf8')
  t.match(manifest, '<dur:chunksManifest xmlns:dur="duracloud.org">')
  t.match(manifest, `<sourceContent contentId="demo:1+IMG+IMG.1">`)
  t.match(manifest, `<md5>${md5(big)}</md5>`)
  t.match(manifest, '<mimetype>image/png</mimetype>')
  t.same(await buffer((await store.readContent('demo:1', 'IMG', 'IMG.1'))!), big)

  const items = server.requests.length
  t.same(await collect(store, { type: 'pidPattern', pattern: '*' }), ['demo:1'], 'chunks and manifests are not objects')
  t.equal(server.requests.length, items + 1)

  // A damaged chunk is an error, not silently wrong content.
  const good = server.items.get('demo:1+IMG+IMG.1.dura-chunk-0001')!.body
  server.items.get('demo:1+IMG+IMG.1.dura-chunk-0001')!.body = Buffer.from('0123456789')
  await t.rejects(buffer((await store.readContent('demo:1', 'IMG', 'IMG.1'))!), /does not match .*dura-manifest/)
  server.items.get('demo:1+IMG+IMG.1.dura-chunk-0001')!.body = good
  server.items.delete('demo:1+IMG+IMG.1.dura-chunk-0002')
  await t.rejects(buffer((await store.readContent('demo:1', 'IMG', 'IMG.1'))!), /chunk demo:1\+IMG\+IMG\.1\.dura-chunk-0002 listed in .* is missing/)
  server.items.set('demo:1+IMG+IMG.1.dura-manifest', { body: Buffer.from('<chunksManifest>'), contentType: 'application/xml' })
  await t.rejects(store.readContent('demo:1', 'IMG', 'IMG.1'), /chunk manifest .* is not well-formed XML; repair or remove it/)
})

t.test('enumeration: pattern with prefix and paging, list, query refused', async (t) => {
  const server = await fake(t)
  const store = connect(server, { prefix: 'cs/', pageSize: 3 })
  const put = (id: string): void => void server.items.set(id, { body: Buffer.from('x'), contentType: 'text/plain' })
  for (const id of ['cs/demo:1', 'cs/demo:1+DC+DC.0', 'cs/demo:2', 'cs/demo:3', 'cs/other:1', 'cs/nocolon', 'cs/a:b.dura-manifest',
    'cs/x:1.dura-chunk-0000', 'cs/demo:10', 'elsewhere:1', 'cs/sub/dir:1']) put(id)
  t.same(await collect(store, { type: 'pidPattern', pattern: '*' }), ['demo:1', 'demo:10', 'demo:2', 'demo:3', 'other:1'])
  const pages = server.requests.filter((r) => r.id === undefined)
  t.same(pages.map((r) => r.query), [
    { storeID: '0', maxResults: '3', prefix: 'cs/' },
    { storeID: '0', maxResults: '3', marker: 'cs/demo:1+DC+DC.0', prefix: 'cs/' },
    { storeID: '0', maxResults: '3', marker: 'cs/demo:3', prefix: 'cs/' },
    { storeID: '0', maxResults: '3', marker: 'cs/sub/dir:1', prefix: 'cs/' },
  ], 'pages while a page is full, marker = last id')
  t.same(await collect(store, { type: 'pidPattern', pattern: 'demo:1*' }), ['demo:1', 'demo:10'])
  t.same(await collect(store, { type: 'pidPattern', pattern: '*:1' }), ['demo:1', 'other:1'])
  t.same(await collect(store, { type: 'pidList', pids: ['demo:3', 'nope:1', 'demo:1', 'demo:3'] }), ['demo:3', 'demo:1', 'demo:3'])
  await t.rejects(collect(store, { type: 'query', queryType: 'iTQL', queryText: 'select' }), { message: QUERY_UNSUPPORTED })

  server.fail({ method: 'GET', id: null, status: 404 })
  await t.rejects(collect(store, { type: 'pidPattern', pattern: '*' }), /answered 404 to GET fedora: check that the space "fedora" exists in store 0/)
  server.fail({ method: 'HEAD', status: 401 })
  await t.rejects(collect(store, { type: 'pidList', pids: ['demo:1'] }), /answered 401/, 'a failed HEAD is never "absent" [D47]')

  // The whole page answer is a listing; garbage is an error.
  const bad = await fake(t)
  const badStore = connect(bad)
  bad.fail({ method: 'GET', id: null, status: 200 })
  await t.rejects(collect(badStore, { type: 'pidPattern', pattern: '*' }), /listing that is not valid XML/)
})

t.test('enumeration stops on abort [D28]', async (t) => {
  const server = await fake(t)
  const store = connect(server, { pageSize: 2 })
  for (let i = 1; i <= 9; i++) server.items.set(`demo:${i}`, { body: Buffer.from('x'), contentType: 'text/plain' })
  const abort = new AbortController()
  const seen: string[] = []
  for await (const pid of store.enumerate({ type: 'pidPattern', pattern: '*' }, abort.signal)) {
    seen.push(pid)
    if (seen.length === 3) abort.abort()
  }
  t.same(seen, ['demo:1', 'demo:2', 'demo:3'])
  t.equal(server.requests.length, 2, 'no page asked for after the abort')

  const listAbort = new AbortController()
  const listed: string[] = []
  for await (const pid of store.enumerate({ type: 'pidList', pids: ['demo:1', 'demo:2', 'demo:3'] }, listAbort.signal)) {
    listed.push(pid)
    listAbort.abort()
  }
  t.same(listed, ['demo:1'])

  // A listing request in flight is abandoned at once.
  server.fail({ method: 'GET', id: null, status: 'hang' })
  const hung = new AbortController()
  const started = Date.now()
  setTimeout(() => hung.abort(), 50)
  t.same(await collect(store, { type: 'pidPattern', pattern: '*' }, hung.signal), [])
  t.ok(Date.now() - started < 5000, 'did not wait for the timeout')
})

t.test('odd PIDs and values are URL-encoded [D41]', async (t) => {
  const server = await fake(t, { storeId: '1 &x=2', space: 'my space' })
  const store = connect(server, { providerId: '1 &x=2', space: 'my space', prefix: 'a b/' })
  const pid = 'o dd:ü?#%&/..'
  const data = bytes('odd', 20)
  const { obj, contents } = makeObject(pid, { 'D S+V.1': data })
  t.equal(await store.writeObject(obj, contents, { overwrite: false }), 'new')
  t.equal(await store.exists(pid), true)
  t.same(await buffer((await store.readContent(pid, 'D S', 'V.1'))!), data)
  t.same([...server.items.keys()].sort(), ['a b/o dd:ü?#%&/..', 'a b/o dd:ü?#%&/..+D S+V.1'])
  const head = server.requests[0]!
  t.equal(head.rawPath, '/durastore/my%20space/a%20b/o%20dd%3A%C3%BC%3F%23%25%26%2F..')
  t.same(head.query, { storeID: '1 &x=2' }, 'storeID encoded: no extra parameters')
  t.equal((await store.readObject(pid))?.pid, pid)
  t.same(await collect(store, { type: 'pidList', pids: [pid] }), [pid])
  const plain = connect(server, { providerId: '1 &x=2', space: 'my space' })
  await t.rejects(collect(plain, { type: 'pidList', pids: ['..'] }), /cannot be used in a DuraStore URL/, 'never a request outside the space')
})

t.test('PUT retries: transient failures retried with capped pauses, others not [D42]', async (t) => {
  const server = await fake(t)
  const store = connect(server, { putRetries: 3, retryPauseMs: 5, retryMaxPauseMs: 10 })
  const data = bytes('r', 40)
  const { obj, contents } = makeObject('demo:1', { 'IMG+IMG.0': data })
  server.fail({ method: 'PUT', id: 'demo:1+IMG+IMG.0', status: 503, times: 2 })
  server.fail({ method: 'PUT', id: 'demo:1', status: 500 })
  t.equal(await store.writeObject(obj, contents, { overwrite: false }), 'new')
  t.same(calls(server), ['HEAD demo:1', 'PUT demo:1+IMG+IMG.0', 'PUT demo:1+IMG+IMG.0', 'PUT demo:1+IMG+IMG.0', 'PUT demo:1', 'PUT demo:1'])
  t.ok(server.requests.filter((r) => r.method === 'PUT').every((r) => r.bodyLength === Number(r.contentLength)), 'every attempt sends the whole body')
  t.same(server.items.get('demo:1+IMG+IMG.0')?.body, data)

  // Capped: the retries run out and the run fails, leaving nothing behind.
  const other = makeObject('demo:2', { 'IMG+IMG.0': data })
  const from = server.requests.length
  server.fail({ method: 'PUT', id: 'demo:2+IMG+IMG.0', status: 502, times: Infinity })
  await t.rejects(store.writeObject(other.obj, other.contents, { overwrite: false }), /answered 502 to PUT fedora\/demo%3A2%2BIMG%2BIMG\.0: .* \(4 attempts\)\./)
  t.equal(calls(server, from).filter((c) => c === 'PUT demo:2+IMG+IMG.0').length, 4)
  t.notOk(server.items.has('demo:2'))

  // A client error is not retried.
  const third = makeObject('demo:3', { 'IMG+IMG.0': data })
  const from3 = server.requests.length
  server.fail({ method: 'PUT', id: 'demo:3+IMG+IMG.0', status: 403 })
  await t.rejects(store.writeObject(third.obj, third.contents, { overwrite: false }), /answered 403 to PUT .*username and password/)
  t.equal(calls(server, from3).filter((c) => c.startsWith('PUT')).length, 1)
})

t.test('a cancel interrupts retry pauses and uploads', async (t) => {
  const server = await fake(t)
  const abort = new AbortController()
  const store = connect(server, { putRetries: 5, retryPauseMs: 60_000, retryMaxPauseMs: 60_000, signal: abort.signal })
  const { obj, contents } = makeObject('demo:1', { 'IMG+IMG.0': bytes('a', 10), 'IMG+IMG.1': bytes('b', 10) })
  server.fail({ method: 'PUT', id: 'demo:1+IMG+IMG.1', status: 503 })
  const started = Date.now()
  setTimeout(() => abort.abort(), 100)
  await t.rejects(store.writeObject(obj, contents, { overwrite: false }), { name: 'AbortError' })
  t.ok(Date.now() - started < 10_000, 'the 60 s pause was cut short')
  t.same([...server.items.keys()], [], 'what the write uploaded is deleted even after a cancel')
  t.ok(calls(server).includes('DELETE demo:1+IMG+IMG.0'))

  const abort2 = new AbortController()
  const store2 = connect(server, { signal: abort2.signal })
  server.fail({ method: 'PUT', id: 'demo:1+IMG+IMG.0', status: 'hang' })
  setTimeout(() => abort2.abort(), 50)
  await t.rejects(store2.writeObject(obj, contents, { overwrite: false }), { name: 'AbortError' }, 'a hanging upload is abandoned')
})

t.test('a failed write leaves the previous object and deletes only what it created [D30]', async (t) => {
  const server = await fake(t)
  const store = connect(server, { putRetries: 0 })
  const first = makeObject('demo:1', { 'IMG+IMG.0': bytes('a', 10), 'IMG+IMG.1': bytes('b', 10) })
  t.equal(await store.writeObject(first.obj, first.contents, { overwrite: false }), 'new')
  const before = new Map([...server.items].map(([k, v]) => [k, Buffer.from(v.body)]))

  // New version IMG.2 uploaded, then the source fails: IMG.2 is deleted, nothing else.
  const changed = makeObject('demo:1', { 'IMG+IMG.0': bytes('a', 10), 'IMG+IMG.2': bytes('c', 10), 'IMG+IMG.3': bytes('d', 10) }, 'changed')
  const failing: ContentSource = async (dsId, versionId) => {
    if (versionId === 'IMG.3') throw new Error('source went away')
    return changed.contents(dsId, versionId)
  }
  let from = server.requests.length
  await t.rejects(store.writeObject(changed.obj, failing, { overwrite: true }), /source went away/)
  t.same(calls(server, from).filter((c) => c.startsWith('DELETE')), ['DELETE demo:1+IMG+IMG.2'], 'only the item the write created')
  t.same(new Map([...server.items].map(([k, v]) => [k, v.body])), before, 'the previous object and its content are intact')

  // The FOXML PUT itself fails: the old FOXML stays, never deleted.
  server.fail({ method: 'PUT', id: 'demo:1', status: 500 })
  from = server.requests.length
  await t.rejects(store.writeObject(changed.obj, changed.contents, { overwrite: true }), /answered 500 to PUT fedora\/demo%3A1:/)
  t.same(calls(server, from).filter((c) => c.startsWith('DELETE')).sort(), ['DELETE demo:1+IMG+IMG.2', 'DELETE demo:1+IMG+IMG.3'])
  t.same(new Map([...server.items].map(([k, v]) => [k, v.body])), before)
  t.equal((await store.readObject('demo:1'))?.properties[0]?.value, 'first')

  // A new object whose FOXML PUT fails leaves nothing at all.
  const fresh = makeObject('demo:5', { 'IMG+IMG.0': bytes('e', 10) })
  server.fail({ method: 'PUT', id: 'demo:5', status: 500 })
  await t.rejects(store.writeObject(fresh.obj, fresh.contents, { overwrite: false }), /answered 500/)
  t.notOk([...server.items.keys()].some((k) => k.startsWith('demo:5')))

  // A source stream that breaks midway is a failure too; the spool file goes.
  const dir = await mkdtemp(join(tmpdir(), 'dc-spool-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const spooling = connect(server, { tempDir: dir, memorySpoolBytes: 0 })
  const broken: ContentSource = async () =>
    new Readable({
      read() {
        this.push(Buffer.alloc(10))
        this.destroy(new Error('read error'))
      },
    })
  await t.rejects(spooling.writeObject(fresh.obj, broken, { overwrite: false }), /read error/)
  t.same(await readdir(dir), [], 'no spool file left')
})

t.test('written FOXML parses and round-trips the model', async (t) => {
  const server = await fake(t)
  const store = connect(server)
  const { obj, contents } = makeObject('demo:7', { 'IMG+IMG.0': bytes('z', 3) })
  await store.writeObject(obj, contents, { overwrite: false })
  const parsed = parseFoxml(server.items.get('demo:7')!.body.toString('utf8'))
  t.same(parsed?.properties, obj.properties)
  t.same(parsed?.datastreams[1]?.versions[0]?.contentLocation, { type: 'INTERNAL_ID', ref: 'demo:7+IMG+IMG.0' })
})
