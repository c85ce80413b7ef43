import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import { ALL_OBJECTS_ITQL, fedoraConnector, utcTimestamp } from '../src/backend/stores/fedora.js'
import { FirstColumnCsv } from '../src/backend/stores/ri-csv.js'
import { parseFoxml } from '../src/backend/stores/foxml.js'
import type { FoxmlObject } from '../src/backend/stores/foxml.js'
import type { ContentSource, ObjectSetSpec, ObjectStoreConnector } from '../src/backend/stores/types.js'
import { FakeFedora } from './helpers/fake-fedora.js'

const USER = 'fedoraAdmin'
const PASS = 'pa:ss wörd'
const AUTH = 'Basic ' + Buffer.from(`${USER}:${PASS}`, 'utf8').toString('base64')

async function startFake(t: { teardown(fn: () => unknown): void }): Promise<FakeFedora> {
  const fake = await FakeFedora.start({ username: USER, password: PASS })
  t.teardown(() => fake.close())
  return fake
}

function connect(fake: FakeFedora, extra: { password?: string; timeoutMs?: number } = {}): ObjectStoreConnector {
  return fedoraConnector({ url: fake.url + '/', username: USER, password: extra.password ?? PASS, timeoutMs: extra.timeoutMs })
}

/** FOXML as a Fedora export: inline DC, a managed IMG with the given versions' CREATED dates, an external EXT. */
function foxml(pid: string, created: string[] = ['2011-11-02T14:15:30.123Z', '2012-01-05T09:00:00.000Z']): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;')
  const versions = created
    .map(
      (c, i) => `    <foxml:datastreamVersion ID="IMG.${i}" LABEL="image" CREATED="${c}" MIMETYPE="image/png" SIZE="4">
      <foxml:contentLocation TYPE="URL" REF="http://old/fedora/get/${esc(pid)}/IMG/${c}"/>
    </foxml:datastreamVersion>`,
    )
    .join('\n')
  return `<?xml version="1.0" encoding="UTF-8"?>
<foxml:digitalObject VERSION="1.1" PID="${esc(pid)}" xmlns:foxml="info:fedora/fedora-system:def/foxml#">
  <foxml:objectProperties><foxml:property NAME="info:fedora/fedora-system:def/model#state" VALUE="Active"/></foxml:objectProperties>
  <foxml:datastream ID="DC" STATE="A" CONTROL_GROUP="X" VERSIONABLE="true">
    <foxml:datastreamVersion ID="DC.0" CREATED="2011-11-02T14:15:30.123Z" MIMETYPE="text/xml">
      <foxml:xmlContent><oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/"><dc:title xmlns:dc="http://purl.org/dc/elements/1.1/">T</dc:title></oai_dc:dc></foxml:xmlContent>
    </foxml:datastreamVersion>
  </foxml:datastream>
  <foxml:datastream ID="IMG" STATE="A" CONTROL_GROUP="M" VERSIONABLE="true">
${versions}
  </foxml:datastream>
  <foxml:datastream ID="EXT" STATE="A" CONTROL_GROUP="E" VERSIONABLE="true">
    <foxml:datastreamVersion ID="EXT.0" CREATED="2011-11-02T14:15:30.123Z" MIMETYPE="text/html">
      <foxml:contentLocation TYPE="URL" REF="http://example.org/page"/>
    </foxml:datastreamVersion>
  </foxml:datastream>
</foxml:digitalObject>
`
}

function object(pid: string, created?: string[]): FoxmlObject {
  return parseFoxml(foxml(pid, created))!
}

/** Content per version id, recording which versions were asked for. */
function source(data: Record<string, string | Buffer>, asked: string[] = []): ContentSource {
  return async (dsId, versionId) => {
    asked.push(`${dsId}/${versionId}`)
    const d = data[versionId]
    if (d === undefined) throw new Error(`no test content for ${versionId}`)
    return Readable.from([Buffer.from(d)])
  }
}

async function collect(store: ObjectStoreConnector, set: ObjectSetSpec, signal = new AbortController().signal): Promise<string[]> {
  const out: string[] = []
  for await (const pid of store.enumerate(set, signal)) out.push(pid)
  return out
}

async function text(stream: Readable | undefined): Promise<string | undefined> {
  return stream === undefined ? undefined : (await buffer(stream)).toString('utf8')
}

t.test('options are checked', async (t) => {
  const ok = { url: 'http://h/fedora', username: 'u', password: 'p' }
  t.throws(() => fedoraConnector({ ...ok, url: 'ftp://h/fedora' }), TypeError)
  t.throws(() => fedoraConnector({ ...ok, url: 'not a url' }), /"url"/)
  t.throws(() => fedoraConnector({ ...ok, url: 'http://u:p@h/fedora' }), /credentials/)
  t.throws(() => fedoraConnector({ ...ok, url: 'http://h/fedora?x=1' }), /query/)
  t.throws(() => fedoraConnector({ ...ok, password: 1 as never }), /"password"/)
  t.throws(() => fedoraConnector({ ...ok, timeoutMs: 0 }), /"timeoutMs"/)
  t.equal(fedoraConnector({ ...ok, url: 'http://h/fedora//' }).description, 'Fedora store http://h/fedora', 'trailing slashes removed')
})

t.test('exists: 200, 404, anything else is an error [D47]', async (t) => {
  const fake = await startFake(t)
  fake.addObject(foxml('demo:1'))
  const store = connect(fake)
  t.equal(await store.exists('demo:1'), true)
  t.equal(await store.exists('demo:2'), false)
  t.same(fake.calls(), ['HEAD objects/demo%3A1', 'HEAD objects/demo%3A2'])

  const wrong = connect(fake, { password: 'nope-secret' })
  const err = await wrong.exists('demo:1').then(() => undefined, (e: Error) => e)
  t.equal(err?.message, `Fedora at ${fake.url} answered 401 to HEAD objects/demo%3A1: check the store's username and password.`)
  t.notMatch(err?.message ?? '', /nope-secret/, 'no password in messages')

  fake.fail({ method: 'HEAD', status: 500, times: 1 })
  await t.rejects(store.exists('demo:1'), { message: `Fedora at ${fake.url} answered 500 to HEAD objects/demo%3A1: check Fedora's server log, or try again later.` })
  fake.fail({ method: 'HEAD', status: 403, times: 1 })
  await t.rejects(store.exists('demo:1'), /answered 403 .*Fedora user fedoraAdmin may do this/)
  fake.fail({ method: 'HEAD', status: 302, times: 1 })
  await t.rejects(store.exists('demo:1'), /answered 302 .*redirects are not followed/)
})

t.test('credentials are sent preemptively with every request', async (t) => {
  const fake = await startFake(t)
  fake.addObject(foxml('demo:1'), { 'IMG+IMG.0': 'aaaa', 'IMG+IMG.1': 'bbbb' })
  const store = connect(fake)
  await store.exists('demo:1')
  await text(await store.readContent('demo:1', 'IMG', 'IMG.0'))
  await store.writeObject(object('demo:9'), source({ 'IMG.0': 'x', 'IMG.1': 'y' }), { overwrite: false })
  await collect(store, { type: 'pidPattern', pattern: '*' })
  t.ok(fake.requests.length >= 7)
  for (const r of fake.requests) t.equal(r.authorization, AUTH, `${r.method} ${r.path} carries the credentials`)
})

t.test('PIDs, datastream ids and parameters are URL-encoded [D41]', async (t) => {
  const fake = await startFake(t)
  const pid = 'we ird/ns:1+?#%é'
  const store = connect(fake)
  t.equal(await store.writeObject(object(pid), source({ 'IMG.0': 'one', 'IMG.1': 'two' }), { overwrite: false }), 'new')
  t.equal(await store.exists(pid), true)
  t.equal((await store.readObject(pid))?.pid, pid)
  t.equal(await text(await store.readContent(pid, 'IMG', 'IMG.1')), 'two')
  const enc = 'we%20ird%2Fns%3A1%2B%3F%23%25%C3%A9'
  t.same(fake.calls(), [
    `HEAD objects/${enc}`,
    'POST upload',
    'POST upload',
    `POST objects/${enc}`,
    `HEAD objects/${enc}`,
    `GET objects/${enc}/export`,
    `GET objects/${enc}/datastreams/IMG/content`,
  ])
  t.equal(fake.requests.at(-1)!.query.get('asOfDateTime'), '2012-01-05T09:00:00.000Z')
})

t.test('readObject', async (t) => {
  const fake = await startFake(t)
  fake.addObject(foxml('demo:1'))
  const store = connect(fake)
  const obj = await store.readObject('demo:1')
  t.equal(obj?.pid, 'demo:1')
  t.same(obj?.datastreams.map((d) => d.id), ['DC', 'IMG', 'EXT'])
  t.equal(fake.requests[0]!.query.get('context'), 'migrate')
  t.equal(await store.readObject('demo:2'), undefined, '404 = absent')

  fake.objects.set('demo:3', '<foxml:digitalObject PID="demo:3" xmlns:foxml="info:fedora/fedora-system:def/foxml#">')
  await t.rejects(store.readObject('demo:3'), /exported demo:3 as something that is not valid FOXML 1\.1/)
  fake.objects.set('demo:4', foxml('demo:5'))
  await t.rejects(store.readObject('demo:4'), /exported demo:4 with the PID demo:5/)
  fake.objects.set('demo:6', '<!DOCTYPE x [<!ENTITY e "x">]>' + foxml('demo:6'))
  await t.rejects(store.readObject('demo:6'), /not valid FOXML/, 'DTDs are refused [D46]')
  fake.fail({ path: /export$/, status: 500, times: 1 })
  await t.rejects(store.readObject('demo:1'), /answered 500 to GET objects\/demo%3A1\/export/)
})

t.test('readContent asks for each version by its UTC creation date', async (t) => {
  const fake = await startFake(t)
  fake.addObject(foxml('demo:1', ['2011-11-02T15:15:30.1+01:00', '2012-01-05T09:00:00Z', '2012-02-01T00:00:00.000Z']), {
    'IMG+IMG.0': 'first',
    'IMG+IMG.1': 'second',
    'IMG+IMG.2': 'third',
  })
  const store = connect(fake)
  await store.readObject('demo:1')
  t.equal(await text(await store.readContent('demo:1', 'IMG', 'IMG.0')), 'first')
  t.equal(await text(await store.readContent('demo:1', 'IMG', 'IMG.1')), 'second')
  t.equal(await text(await store.readContent('demo:1', 'IMG', 'IMG.2')), 'third')
  const asked = fake.requests.filter((r) => r.path.endsWith('/content')).map((r) => r.query.get('asOfDateTime'))
  t.same(asked, ['2011-11-02T14:15:30.100Z', '2012-01-05T09:00:00.000Z', '2012-02-01T00:00:00.000Z'])
  t.equal(fake.calls().filter((c) => c.endsWith('/export')).length, 1, 'dates remembered from the object read')

  const other = connect(fake)
  t.equal(await text(await other.readContent('demo:1', 'IMG', 'IMG.1')), 'second', 'an object not read yet is exported first')
  t.equal(await other.readContent('demo:1', 'IMG', 'IMG.9'), undefined, 'unknown version')
  t.equal(await other.readContent('demo:2', 'IMG', 'IMG.0'), undefined, 'unknown object')
  t.equal(await other.readContent('demo:1', 'NOPE', 'NOPE.0'), undefined)
  fake.fail({ path: /\/content$/, status: 404, times: 1 })
  t.equal(await other.readContent('demo:1', 'IMG', 'IMG.0'), undefined, '404 = absent')
  fake.fail({ path: /\/content$/, status: 302, times: 1 })
  await t.rejects(other.readContent('demo:1', 'IMG', 'IMG.0'), /^demo:1 datastream IMG version IMG\.0: .*answered 302 .*redirected more than 5 times or without a Location/)
  fake.fail({ path: /\/content$/, status: 500, times: 1 })
  await t.rejects(other.readContent('demo:1', 'IMG', 'IMG.0'), /^demo:1 datastream IMG version IMG\.0: Fedora at .* answered 500 to GET objects\/demo%3A1\/datastreams\/IMG\/content/)

  fake.objects.set('demo:7', foxml('demo:7', ['yesterday']))
  await t.rejects(other.readContent('demo:7', 'IMG', 'IMG.0'), /demo:7 datastream IMG version IMG\.0 .* unreadable \(yesterday\) creation date/)
})

t.test('"." and ".." are not sent as PIDs (URL resolution would make them another resource)', async (t) => {
  const fake = await startFake(t)
  const store = connect(fake)
  const listed: string[] = []
  for await (const pid of store.enumerate({ type: 'pidList', pids: ['.', '..'] }, new AbortController().signal)) listed.push(pid)
  t.same(listed, [])
  t.equal(await store.readObject('..'), undefined)
  t.equal(await store.readContent('.', 'IMG', 'IMG.0'), undefined)
  t.same(fake.requests, [], 'nothing asked of Fedora')
})

t.test('a Redirect datastream\'s content is fetched where Fedora redirects; credentials stay with Fedora', async (t) => {
  const fake = await startFake(t)
  fake.addObject(foxml('demo:1'), { 'IMG+IMG.0': 'first', 'IMG+IMG.1': 'second' })
  const seen: Array<string | undefined> = []
  const elsewhere = createServer((req, res) => {
    seen.push(req.headers.authorization)
    res.end(`elsewhere ${req.url}`)
  })
  await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => elsewhere.close(() => resolve())))
  const target = `http://localhost:${(elsewhere.address() as AddressInfo).port}`

  fake.fail({ path: /\/content$/, status: 302, location: `${target}/files/img0`, times: 1 })
  t.equal(await text(await connect(fake).readContent('demo:1', 'IMG', 'IMG.0')), 'elsewhere /files/img0', 'followed')
  t.same(seen, [undefined], 'no credentials to another origin')

  fake.fail({ path: /\/content$/, status: 303, location: '../IMG/content?asOfDateTime=2012-01-05T09:00:00.000Z', times: 1 })
  t.equal(await text(await connect(fake).readContent('demo:1', 'IMG', 'IMG.0')), 'second', 'a relative redirect back into Fedora keeps the credentials')

  fake.fail({ path: /\/content$/, status: 302, location: `${target}/loop`, times: 1 })
  const looping = fedoraConnector({ url: fake.url, username: USER, password: PASS, outbound: { allowedHosts: ['fedora.example.org'] } })
  await t.rejects(looping.readContent('demo:1', 'IMG', 'IMG.0'), /^demo:1 datastream IMG version IMG\.0: the content of .* is at localhost, which this server may not contact; ask the administrator to add it to CLOUDSYNC_OUTBOUND_HOSTS\.$/)
  t.equal(seen.length, 1, 'a host outside the allow-list is not contacted')

  fake.fail({ path: /\/content$/, status: 307, location: 'content', times: 6 })
  await t.rejects(connect(fake).readContent('demo:1', 'IMG', 'IMG.0'), /redirected more than 5 times/)
})

t.test('readContent streams the body as it arrives', async (t) => {
  const fake = await startFake(t)
  const big = Buffer.alloc(256 * 1024, 7)
  fake.addObject(foxml('demo:1', ['2011-11-02T14:15:30.123Z']), { 'IMG+IMG.0': big })
  let release!: () => void
  fake.contentGate = new Promise<void>((resolve) => (release = resolve))
  const stream = (await connect(fake).readContent('demo:1', 'IMG', 'IMG.0'))!
  const first = await new Promise<Buffer>((resolve) => stream.once('data', resolve))
  t.ok(first.length > 0 && first.length <= big.length / 2, 'the first half arrived before the server sent the rest')
  stream.pause()
  release()
  const rest = await buffer(stream)
  t.ok(Buffer.concat([first, rest]).equals(big))
})

t.test('write new: stage every managed version, then ingest', async (t) => {
  const fake = await startFake(t)
  const store = connect(fake)
  const asked: string[] = []
  t.equal(await store.writeObject(object('demo:1'), source({ 'IMG.0': 'v0', 'IMG.1': 'v1' }, asked), { overwrite: false }), 'new')
  t.same(asked, ['IMG/IMG.0', 'IMG/IMG.1'], 'only M versions are asked for')
  t.same(fake.calls(), ['HEAD objects/demo%3A1', 'POST upload', 'POST upload', 'POST objects/demo%3A1'])
  const [, up] = fake.requests
  t.match(up!.contentType, /^multipart\/form-data; boundary=/)
  t.match(up!.body, /Content-Disposition: form-data; name="file"/)
  t.match(up!.body, /Content-Type: image\/png/)
  const ingest = fake.requests[3]!
  t.equal(ingest.contentType, 'text/xml')
  const written = parseFoxml(ingest.body)!
  const refs = written.datastreams.find((d) => d.id === 'IMG')!.versions.map((v) => v.contentLocation)
  t.same(refs, [{ type: 'URL', ref: 'uploaded://1' }, { type: 'URL', ref: 'uploaded://2' }], 'temporary URIs as content locations')
  t.same(written.datastreams.find((d) => d.id === 'EXT')!.versions[0]!.contentLocation, { type: 'URL', ref: 'http://example.org/page' }, 'E kept')
  t.equal(fake.content('demo:1', 'IMG', 'IMG.0')?.toString(), 'v0')
  t.equal(fake.content('demo:1', 'IMG', 'IMG.1')?.toString(), 'v1')
  t.equal(fake.uploads.size, 0, 'all uploads used')

  // A fresh connector reads back what was written.
  const again = connect(fake)
  t.equal(await text(await again.readContent('demo:1', 'IMG', 'IMG.0')), 'v0')
})

t.test('write existing: skip without touching content, or purge after staging', async (t) => {
  const fake = await startFake(t)
  fake.addObject(foxml('demo:1'), { 'IMG+IMG.0': 'old0', 'IMG+IMG.1': 'old1' })
  const store = connect(fake)
  const asked: string[] = []
  t.equal(await store.writeObject(object('demo:1'), source({ 'IMG.0': 'n0', 'IMG.1': 'n1' }, asked), { overwrite: false }), 'skipped')
  t.same(asked, [])
  t.same(fake.calls(), ['HEAD objects/demo%3A1'])

  fake.requests.length = 0
  t.equal(await store.writeObject(object('demo:1'), source({ 'IMG.0': 'n0', 'IMG.1': 'n1' }), { overwrite: true }), 'replaced')
  t.same(fake.calls(), ['HEAD objects/demo%3A1', 'POST upload', 'POST upload', 'DELETE objects/demo%3A1', 'POST objects/demo%3A1'], 'purge right before ingest [D43]')
  t.equal(fake.content('demo:1', 'IMG', 'IMG.1')?.toString(), 'n1')
})

t.test('a failed write leaves the previous object', async (t) => {
  const fake = await startFake(t)
  fake.addObject(foxml('demo:1'), { 'IMG+IMG.0': 'old0', 'IMG+IMG.1': 'old1' })
  const before = fake.objects.get('demo:1')
  const store = connect(fake)

  fake.fail({ path: 'upload', status: 500, times: 1 })
  await t.rejects(store.writeObject(object('demo:1'), source({ 'IMG.0': 'n0', 'IMG.1': 'n1' }), { overwrite: true }), /answered 500 to POST upload/)
  t.notOk(fake.calls().includes('DELETE objects/demo%3A1'), 'no purge when staging fails')

  const broken: ContentSource = async (_ds, v) => {
    if (v === 'IMG.0') return Readable.from([Buffer.from('n0')])
    return new Readable({
      read() {
        this.push(Buffer.from('part'))
        this.destroy(new Error('source broke off'))
      },
    })
  }
  await t.rejects(store.writeObject(object('demo:1'), broken, { overwrite: true }), /source broke off/, "the source's error is reported")
  const refused: ContentSource = async () => {
    throw new Error('The source store has no content for demo:1 datastream IMG version IMG.0')
  }
  await t.rejects(store.writeObject(object('demo:1'), refused, { overwrite: true }), /has no content for demo:1/)
  fake.fail({ method: 'DELETE', status: 401, times: 1 })
  await t.rejects(store.writeObject(object('demo:1'), source({ 'IMG.0': 'n0', 'IMG.1': 'n1' }), { overwrite: true }), /answered 401 to DELETE objects\/demo%3A1/)

  t.notOk(fake.calls().includes('POST objects/demo%3A1'), 'never ingested')
  t.equal(fake.objects.get('demo:1'), before)
  t.equal(fake.content('demo:1', 'IMG', 'IMG.1')?.toString(), 'old1')

  fake.fail({ method: 'POST', path: 'objects/demo%3A2', status: 500, body: 'ObjectValidityException: bad', times: 1 })
  await t.rejects(store.writeObject(object('demo:2'), source({ 'IMG.0': 'a', 'IMG.1': 'b' }), { overwrite: false }), /answered 500 to POST objects\/demo%3A2 \(Fedora said: ObjectValidityException: bad\)/)
  fake.fail({ path: 'upload', status: 202, body: '', times: 1 })
  await t.rejects(store.writeObject(object('demo:2'), source({ 'IMG.0': 'a', 'IMG.1': 'b' }), { overwrite: false }), /did not answer with its temporary URI/)
})

t.test('uploads stream the content', async (t) => {
  const fake = await startFake(t)
  const store = connect(fake)
  const chunk = Buffer.alloc(64 * 1024, 1)
  // The source sends its second chunk only once the server has received the first.
  const streaming: ContentSource = async () =>
    Readable.from(
      (async function* () {
        yield chunk
        await new Promise<void>((resolve) => {
          const check = (n: number) => {
            if (n >= chunk.length) {
              fake.off('upload-bytes', check)
              resolve()
            }
          }
          fake.on('upload-bytes', check)
        })
        yield chunk
      })(),
    )
  const obj = object('demo:1', ['2011-11-02T14:15:30.123Z'])
  t.equal(await store.writeObject(obj, streaming, { overwrite: false }), 'new')
  t.equal(fake.content('demo:1', 'IMG', 'IMG.0')?.length, 2 * chunk.length)
})

t.test('enumerate a pattern: the all-objects RI query, syntax check, glob', async (t) => {
  const fake = await startFake(t)
  for (const pid of ['demo:1', 'demo:2', 'other:1', 'nocolon', 'a:b:c', 'demo:1+DC+DC.0']) fake.objects.set(pid, foxml(pid))
  const store = connect(fake)
  t.same(await collect(store, { type: 'pidPattern', pattern: '*' }), ['demo:1', 'demo:2', 'other:1'])
  t.same(await collect(store, { type: 'pidPattern', pattern: 'demo:*' }), ['demo:1', 'demo:2'])
  t.same(await collect(store, { type: 'pidPattern', pattern: '*:1' }), ['demo:1', 'other:1'])
  t.same(await collect(store, { type: 'pidPattern', pattern: 'demo.*' }), [], 'not a regular expression [D23]')
  const form = fake.requests[0]!
  t.equal(form.method, 'POST')
  t.equal(form.path, 'risearch')
  const params = new URLSearchParams(form.body)
  t.same(Object.fromEntries(params), { type: 'tuples', lang: 'itql', format: 'CSV', stream: 'on', query: ALL_OBJECTS_ITQL })
})

t.test('enumerate a list: HEAD each PID, in order, duplicates kept', async (t) => {
  const fake = await startFake(t)
  fake.addObject(foxml('demo:1'))
  fake.addObject(foxml('demo:3'))
  const store = connect(fake)
  t.same(await collect(store, { type: 'pidList', pids: ['demo:3', 'demo:2', 'demo:1', 'demo:3'] }), ['demo:3', 'demo:1', 'demo:3'])
  t.same(fake.calls(), ['HEAD objects/demo%3A3', 'HEAD objects/demo%3A2', 'HEAD objects/demo%3A1', 'HEAD objects/demo%3A3'])
  await t.rejects(collect(connect(fake, { password: 'x' }), { type: 'pidList', pids: ['demo:1'] }), /answered 401/, 'wrong credentials are not "absent" [D47]')
})

t.test('enumerate a query: iTQL or SPARQL, first column, info:fedora/ rows only [D39]', async (t) => {
  const fake = await startFake(t)
  const seen: Array<[string, string]> = []
  fake.queryHandler = (lang, query) => {
    seen.push([lang, query])
    if (query === 'bad') return undefined
    if (query === 'raw') return { raw: '"s","t"\r\ninfo:fedora/q:1,x\r\n"info:fedora/q:2,odd","y ""z"""\r\n\r\ninfo:fedora/q:3' }
    return ['info:fedora/demo:1', 'demo:2', 'info:fedora/', 'http://x/info:fedora/demo:3', 'info:fedora/demo:4/DC', 'info:fedora/a, "b"']
  }
  const store = connect(fake)
  t.same(await collect(store, { type: 'query', queryType: 'iTQL', queryText: 'select $x …' }), ['demo:1', 'demo:4/DC', 'a, "b"'], 'no syntax check for queries')
  t.same(await collect(store, { type: 'query', queryType: 'SPARQL', queryText: 'SELECT ?x WHERE { … }' }), ['demo:1', 'demo:4/DC', 'a, "b"'])
  t.same(seen, [['itql', 'select $x …'], ['sparql', 'SELECT ?x WHERE { … }']])
  t.same(await collect(store, { type: 'query', queryType: 'iTQL', queryText: 'raw' }), ['q:1', 'q:2,odd', 'q:3'], 'CRLF, quotes, last row without line end')
  await t.rejects(collect(store, { type: 'query', queryType: 'iTQL', queryText: 'bad' }), /answered 500 to POST risearch \(Fedora said: org\.trippi\.TrippiException: Error parsing query\): check the query/)
})

t.test('enumerate stops as soon as the signal aborts [D28]', async (t) => {
  const fake = await startFake(t)
  for (let i = 0; i < 50; i++) fake.objects.set(`demo:${i}`, foxml(`demo:${i}`))
  fake.rowDelayMs = 20
  const store = connect(fake)
  const abort = new AbortController()
  const got: string[] = []
  const started = Date.now()
  for await (const pid of store.enumerate({ type: 'pidPattern', pattern: '*' }, abort.signal)) {
    got.push(pid)
    if (got.length === 2) abort.abort()
  }
  t.same(got, ['demo:0', 'demo:1'])
  t.ok(Date.now() - started < 800, 'did not wait for the rest of the answer')
  for (let i = 0; i < 50 && !fake.queryAbandoned; i++) await new Promise((r) => setTimeout(r, 10))
  t.ok(fake.queryAbandoned, 'the answer was abandoned')

  // Aborted while waiting for the answer's headers.
  fake.fail({ path: 'risearch', status: 0, times: 1 })
  const early = new AbortController()
  setTimeout(() => early.abort(), 50)
  t.same(await collect(store, { type: 'pidPattern', pattern: '*' }, early.signal), [])

  fake.requests.length = 0
  t.same(await collect(store, { type: 'pidList', pids: ['demo:1'] }, AbortSignal.abort()), [])
  t.same(await collect(store, { type: 'query', queryType: 'iTQL', queryText: 'x' }, AbortSignal.abort()), [])
  t.same(fake.requests, [], 'nothing asked once aborted')

  fake.fail({ method: 'HEAD', status: 0, times: 1 })
  const listAbort = new AbortController()
  setTimeout(() => listAbort.abort(), 50)
  t.same(await collect(store, { type: 'pidList', pids: ['demo:1', 'demo:2'] }, listAbort.signal), [], 'a HEAD in flight is abandoned')
})

t.test('timeouts and unreachable servers', async (t) => {
  const fake = await startFake(t)
  fake.fail({ method: 'HEAD', status: 0, times: 1 })
  const store = connect(fake, { timeoutMs: 150 })
  await t.rejects(store.exists('demo:1'), { message: `Fedora at ${fake.url} did not answer HEAD objects/demo%3A1 within 1 second; try again later or check Fedora.` })

  fake.addObject(foxml('demo:1', ['2011-11-02T14:15:30.123Z']), { 'IMG+IMG.0': Buffer.alloc(1000) })
  fake.contentGate = new Promise(() => undefined)
  const stream = (await store.readContent('demo:1', 'IMG', 'IMG.0'))!
  await t.rejects(buffer(stream), /stopped sending the content of demo:1 datastream IMG version IMG\.0 for GET .* within 1 second/)

  const closed = createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const port = (closed.address() as AddressInfo).port
  await new Promise<void>((resolve) => closed.close(() => resolve()))
  const dead = fedoraConnector({ url: `http://127.0.0.1:${port}/fedora`, username: USER, password: PASS })
  const err = await dead.exists('demo:1').then(() => undefined, (e: Error) => e)
  t.match(err?.message, /^Fedora at http:\/\/127\.0\.0\.1:\d+\/fedora could not be reached for HEAD objects\/demo%3A1 \(ECONNREFUSED\); check the store's URL/)
  t.equal(err?.constructor, Error, 'a store error, not a TypeError')
})

t.test('utcTimestamp', async (t) => {
  t.equal(utcTimestamp('2011-11-02T14:15:30.123Z'), '2011-11-02T14:15:30.123Z')
  t.equal(utcTimestamp('2011-11-02T14:15:30Z'), '2011-11-02T14:15:30.000Z')
  t.equal(utcTimestamp('2011-11-02T14:15:30.1'), '2011-11-02T14:15:30.100Z', 'no zone = UTC')
  t.equal(utcTimestamp('2011-11-02T14:15:30.123456-05:30'), '2011-11-02T19:45:30.123Z')
  t.equal(utcTimestamp('2011-11-02'), undefined)
  t.equal(utcTimestamp('later'), undefined)
})

t.test('FirstColumnCsv in pieces', async (t) => {
  const input = '"o","p"\ninfo:fedora/a:1,x\r\n"info:fedora/b:""2""","multi\nline"\n\n"",y\nlast'
  for (const size of [1, 2, 3, 7, input.length]) {
    const csv = new FirstColumnCsv()
    const out: string[] = []
    for (let i = 0; i < input.length; i += size) csv.push(input.slice(i, i + size), out)
    csv.end(out)
    t.same(out, ['o', 'info:fedora/a:1', 'info:fedora/b:"2"', '', 'last'], `pieces of ${size}`)
  }
})
