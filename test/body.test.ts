import t from 'tap'
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import connect from 'connect'
import { body, readBody, matchContentType } from '../src/middleware/body.js'
import type { BodyMiddlewareOptions } from '../src/middleware/body.js'
import { contextOf } from '../src/middleware/context.js'
import type { ConnectRequest, Middleware } from '../src/middleware/context.js'
import { problemHandler } from '../src/middleware/problem.js'
import { request } from './helpers/http.js'

interface Teardown { teardown(fn: () => unknown): void }
interface Assert { equal(...args: any[]): unknown }

const VJ = 'application/vnd.fcrepo-cloudsync.task+json'
const VX = 'application/vnd.fcrepo-cloudsync.task+xml'
const J = 'application/json'
const X = 'application/xml'
const TASK_TYPES = [VJ, VX, J, X]

interface Server { base: string; port: number; errors: Array<{ status?: number; code?: string }> }

/** connect app: [before…], body(options), echo { body, bodyType, reqBody } as JSON; problems rendered. */
async function serve(t: Teardown, options: BodyMiddlewareOptions, before: Middleware[] = []): Promise<Server> {
  const errors: Server['errors'] = []
  const app = connect()
  for (const m of before) app.use(m)
  app.use(body(options))
  app.use((req: http.IncomingMessage, res: http.ServerResponse) => {
    const ctx = contextOf(req)
    res.setHeader('Content-Type', 'application/json')
    res.end(JSON.stringify({ body: ctx.body ?? null, bodyType: ctx.bodyType ?? null, reqBody: (req as ConnectRequest).body ?? null }))
  })
  const problems = problemHandler({ log: () => {} })
  app.use((err: unknown, req: http.IncomingMessage, res: http.ServerResponse, next: (e?: unknown) => void) => {
    const e = err as { status?: number; code?: string }
    errors.push({ status: e.status, code: e.code })
    problems(err, req, res, next)
  })
  const server = http.createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  const port = (server.address() as AddressInfo).port
  return { base: `http://127.0.0.1:${port}`, port, errors }
}

function post(s: Server, type: string | undefined, payload: string | Buffer, method = 'POST') {
  return request(s.base, method, '/tasks', { headers: type === undefined ? { Accept: J } : { 'Content-Type': type, Accept: J }, body: payload })
}

/** Expect a 400 problem with `code`. */
async function rejects400(t: Assert, s: Server, type: string, payload: string | Buffer, code: string, label: string): Promise<void> {
  const before = s.errors.length
  const r = await post(s, type, payload)
  t.equal(r.status, 400, `${label}: 400`)
  t.equal(s.errors[before]?.code, code, `${label}: ${code}`)
  t.equal(r.headers['content-type'], 'application/problem+json')
}

t.test('JSON bodies: vendor and plain types, parameters and case ignored', async (t) => {
  const s = await serve(t, { consumes: TASK_TYPES })
  const r = await post(s, `${VJ}; charset=UTF-8`, '{"task":{"name":"nightly","state":"Idle"}}')
  t.equal(r.status, 200)
  t.same(r.json(), { body: { task: { name: 'nightly', state: 'Idle' } }, bodyType: VJ, reqBody: { task: { name: 'nightly', state: 'Idle' } } })
  t.equal((await post(s, 'Application/JSON', '{"task":{}}')).json().bodyType, J, 'returns the consumes entry')
  t.same((await post(s, J, '\ufeff{"a":"\u00e9\u4e2d"}')).json().body, { a: 'é中' }, 'UTF-8 with BOM')
  t.same((await post(s, J, '[1,"2",null,true]')).json().body, [1, '2', null, true])
})

t.test('415 for a missing or different Content-Type', async (t) => {
  const s = await serve(t, { consumes: TASK_TYPES })
  const missing = await post(s, undefined, '{}')
  t.equal(missing.status, 415)
  t.equal(missing.headers['accept-post'], TASK_TYPES.join(', '))
  t.match(missing.json().detail, /Content-Type/)
  for (const type of ['text/plain', 'application/vnd.fcrepo-cloudsync.user+json', 'application/x-www-form-urlencoded', 'application/jsonx', 'json', '']) {
    t.equal((await post(s, type, '{}')).status, 415, `Content-Type: ${type}`)
  }
  const patch = await post(s, 'text/plain', 'x', 'PATCH')
  t.equal(patch.status, 415)
  t.equal(patch.headers['accept-patch'], TASK_TYPES.join(', '))
  t.ok(s.errors.every((e) => e.code === 'unsupported_media_type'))
})

t.test('methods without a body are passed through unread', async (t) => {
  const s = await serve(t, { consumes: TASK_TYPES })
  for (const method of ['GET', 'HEAD', 'DELETE', 'OPTIONS']) {
    const r = await request(s.base, method, '/tasks')
    t.equal(r.status, 200, method)
    if (method !== 'HEAD') t.same(r.json().body, null)
  }
  t.same(s.errors, [])
})

t.test('JSON: empty, malformed, reserved keys, depth', async (t) => {
  const s = await serve(t, { consumes: [J, VJ] })
  await rejects400(t, s, J, '', 'empty_body', 'empty')
  await rejects400(t, s, J, ' \n\t ', 'empty_body', 'whitespace')
  await rejects400(t, s, J, '{"a":', 'malformed_body', 'truncated')
  await rejects400(t, s, J, "{'a':1}", 'malformed_body', 'single quotes')
  await rejects400(t, s, J, Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), 'malformed_body', 'invalid UTF-8')
  await rejects400(t, s, J, '{"__proto__":{"polluted":1}}', 'forbidden_key', '__proto__')
  await rejects400(t, s, J, '{"a":[{"b":{"constructor":{"prototype":{"polluted":1}}}}]}', 'forbidden_key', 'nested constructor')
  await rejects400(t, s, J, '{"prototype":1}', 'forbidden_key', 'prototype')
  await rejects400(t, s, J, '{"\\u005f_proto__":{"polluted":1}}', 'forbidden_key', 'escaped __proto__')
  t.equal(({} as { polluted?: unknown }).polluted, undefined, 'Object.prototype untouched')
  t.same((await post(s, J, '{"proto":1,"Constructor":2,"x":"__proto__"}')).json().body, { proto: 1, Constructor: 2, x: '__proto__' }, 'only exact key names are reserved')

  const nest = (n: number) => '['.repeat(n) + ']'.repeat(n)
  t.equal((await post(s, J, nest(32))).status, 200, 'depth 32 accepted')
  await rejects400(t, s, J, nest(33), 'too_deep', 'depth 33')
  await rejects400(t, s, J, '{"a":'.repeat(33) + '1' + '}'.repeat(33), 'too_deep', 'objects 33 deep')
  await rejects400(t, s, J, nest(100_000), 'too_deep', 'depth 100000')
})

t.test('size limit: 413 up front or while streaming, connection closed', async (t) => {
  const s = await serve(t, { consumes: [J], limit: 100 })
  const exact = JSON.stringify({ a: 'x'.repeat(92) })
  t.equal(Buffer.byteLength(exact), 100)
  t.equal((await post(s, J, exact)).status, 200, 'exactly the limit is accepted')
  const over = await post(s, J, JSON.stringify({ a: 'x'.repeat(93) }))
  t.equal(over.status, 413)
  t.equal(over.headers.connection, 'close')

  // Declared length over the limit: answered before the client sends a single body byte.
  const early = await rawExchange(s.port, `POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n`)
  t.match(early, /^HTTP\/1\.1 413 /)
  t.match(early, /connection: close/i)

  // Chunked upload without a length: cut off as soon as the running total crosses the limit.
  const chunk = (text: string) => `${text.length.toString(16)}\r\n${text}\r\n`
  const streamed = await rawExchange(s.port, `POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n` + chunk('{"a":"' + 'y'.repeat(120)))
  t.match(streamed, /^HTTP\/1\.1 413 /)
  t.same(s.errors.map((e) => e.code), ['payload_too_large', 'payload_too_large', 'payload_too_large'])
})

/**
 * Write `head` (and never finish the body), resolve with everything the
 * server sends before it closes the connection. A server that waits for the
 * rest of the body would time this out.
 */
function rawExchange(port: number, head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(head))
    let out = ''
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer; got ${JSON.stringify(out)}`)) }, 5000)
    socket.on('data', (d) => { out += d.toString('latin1') })
    socket.on('close', () => { clearTimeout(timer); resolve(out) })
    socket.on('error', () => {})
  })
}

t.test('a multi-byte character split across chunks is decoded', async (t) => {
  const s = await serve(t, { consumes: [J] })
  const bytes = Buffer.from('{"name":"\u00e9\u20ac\ud83d\ude00"}')
  const text = await new Promise<string>((resolve, reject) => {
    const req = http.request({ port: s.port, host: '127.0.0.1', method: 'POST', path: '/', agent: false, headers: { 'Content-Type': J, 'Transfer-Encoding': 'chunked' } }, (res) => {
      let out = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { out += c })
      res.on('end', () => resolve(out))
    })
    req.on('error', reject)
    // Split inside the 4-byte emoji.
    req.write(bytes.subarray(0, bytes.length - 4))
    setTimeout(() => req.end(bytes.subarray(bytes.length - 4)), 20)
  })
  t.same(JSON.parse(text).body, { name: 'é€😀' })
})

t.test('XML bodies shaped like their JSON equivalent', async (t) => {
  const s = await serve(t, { consumes: [VX, X, 'text/xml'] })
  const xml = async (payload: string, type = X) => {
    const r = await post(s, type, payload)
    t.equal(r.status, 200, payload.slice(0, 60))
    return r.json().body
  }
  t.same(await xml('<user><name>bob</name></user>'), { user: { name: 'bob' } })
  t.same(await xml('<?xml version="1.0" encoding="UTF-8"?>\n<task>\n  <name>nightly</name>\n  <state>Idle</state>\n</task>\n', VX),
    { task: { name: 'nightly', state: 'Idle' } }, 'declaration and layout whitespace')
  t.same(await xml('<user><password> pw </password><blank>  </blank><empty/><empty2></empty2></user>', 'text/xml'),
    { user: { password: ' pw ', blank: '  ', empty: '', empty2: '' } }, 'significant whitespace kept, empty → ""')
  t.same(await xml('<v><n>007</n><b>true</b><f>1e3</f><z>0x10</z></v>'), { v: { n: '007', b: 'true', f: '1e3', z: '0x10' } }, 'values stay strings')
  t.same(await xml('<user id="7" admin="true"><name lang="en">bob</name></user>'), { user: { name: 'bob' } }, 'attributes ignored')
  t.same(await xml('<a><t>x &amp; y &lt;z&gt; &quot;&apos; &#65;&#x42;&#x1F600;</t></a>'), { a: { t: 'x & y <z> "\' AB😀' } }, 'predefined entities and character references')
  t.same(await xml('<a><t><![CDATA[<b>&amp;</b>]]> tail</t></a>'), { a: { t: '<b>&amp;</b> tail' } }, 'CDATA is literal')
  t.same(await xml('<a><!-- note --><t>x<!-- inside -->y</t><?pi data?></a>'), { a: { t: 'xy' } }, 'comments and PIs ignored')
  t.same(await xml('<list><i>1</i><i>2</i><j/><i>3</i></list>'), { list: { i: ['1', '2', '3'], j: '' } }, 'repeated elements become an array')
  t.same(await xml('<root>text</root>'), { root: 'text' })
  t.same(await xml('<a><toString>x</toString><hasOwnProperty>y</hasOwnProperty></a>'), { a: { toString: 'x', hasOwnProperty: 'y' } }, 'names kept exactly')
  t.same(await xml('<a>\r\n<t>l1\r\nl2</t></a>'), { a: { t: 'l1\nl2' } }, 'line endings normalised as XML requires')
})

t.test('XML: DOCTYPE refused before parsing, fast', async (t) => {
  const s = await serve(t, { consumes: [X] })
  const laughs = '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">' +
    Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`).join('') +
    ']><lolz>&lol9;</lolz>'
  const started = Date.now()
  await rejects400(t, s, X, laughs, 'doctype_forbidden', 'billion laughs')
  t.ok(Date.now() - started < 1000, 'refused quickly')
  await rejects400(t, s, X, '<!DOCTYPE u SYSTEM "file:///etc/passwd"><u>&x;</u>', 'doctype_forbidden', 'external entity')
  await rejects400(t, s, X, '<!doctype u><u/>', 'doctype_forbidden', 'lower-case doctype')
  await rejects400(t, s, X, '<u><x>&xxe;</x></u>', 'malformed_body', 'undeclared entity')
})

t.test('XML: malformed, reserved names, depth', async (t) => {
  const s = await serve(t, { consumes: [X] })
  await rejects400(t, s, X, '', 'empty_body', 'empty')
  await rejects400(t, s, X, '  \n', 'empty_body', 'blank')
  const malformed = [
    '<user><name>bob</user>', '<user>', 'bob', '<a/><b/>', '<a/>junk', 'junk<a/>', '<a/>junk<!-- c -->', '<a>x &amp y</a>',
    '<a>x < y</a>', '<a>1<b>2</b></a>', '<a><b>2</b>tail</a>', '<a>\u0001</a>', '<a>&#0;</a>', '<a>&#xD800;</a>', '<a></r><r>',
    '</r><r>', '<a/></r>', '<?xml version="1.0"', '{"json":true}'
  ]
  for (const payload of malformed) await rejects400(t, s, X, payload, 'malformed_body', JSON.stringify(payload))
  await rejects400(t, s, X, '<a><__proto__><x>1</x></__proto__></a>', 'forbidden_key', '__proto__ element')
  await rejects400(t, s, X, '<a><constructor>1</constructor></a>', 'forbidden_key', 'constructor element')
  await rejects400(t, s, X, '<prototype/>', 'forbidden_key', 'prototype root')

  const nest = (n: number) => '<e>'.repeat(n) + 'v' + '</e>'.repeat(n)
  t.equal((await post(s, X, nest(32))).status, 200, 'depth 32 accepted')
  await rejects400(t, s, X, nest(33), 'too_deep', 'depth 33')
  await rejects400(t, s, X, '<e>'.repeat(32) + '<leaf/>' + '</e>'.repeat(32), 'too_deep', 'self-closing at depth 33')
  await rejects400(t, s, X, nest(20_000), 'too_deep', 'depth 20000')
})

t.test('custom maxDepth and limit', async (t) => {
  const s = await serve(t, { consumes: [J, X], maxDepth: 2, limit: 1024 })
  t.equal((await post(s, J, '{"a":{"b":1}}')).status, 200)
  await rejects400(t, s, J, '{"a":{"b":{}}}', 'too_deep', 'json depth 3')
  t.equal((await post(s, X, '<a><b>1</b></a>')).status, 200)
  await rejects400(t, s, X, '<a><b><c/></b></a>', 'too_deep', 'xml depth 3')
  t.equal((await post(s, J, JSON.stringify({ a: 'x'.repeat(1100) }))).status, 413)
})

t.test('form and text bodies', async (t) => {
  const s = await serve(t, { consumes: ['application/x-www-form-urlencoded', 'text/plain'] })
  t.same((await post(s, 'application/x-www-form-urlencoded', 'url=http%3A%2F%2Fd.example&username=a+b&username=c&empty=')).json().body,
    { url: 'http://d.example', username: 'a b', empty: '' })
  t.same((await post(s, 'application/x-www-form-urlencoded', '')).json().body, {}, 'an empty form is no fields')
  await rejects400(t, s, 'application/x-www-form-urlencoded', '__proto__=1', 'forbidden_key', 'form __proto__')
  t.equal((await post(s, 'text/plain; charset=utf-8', ' hello\n')).json().body, ' hello\n')
})

t.test('Content-Encoding is refused', async (t) => {
  const s = await serve(t, { consumes: [J] })
  const r = await request(s.base, 'POST', '/', { headers: { 'Content-Type': J, 'Content-Encoding': 'gzip' }, body: '{}' })
  t.equal(r.status, 415)
  t.equal(s.errors[0]!.code, 'unsupported_encoding')
  const identity = await request(s.base, 'POST', '/', { headers: { 'Content-Type': J, 'Content-Encoding': 'identity' }, body: '{}' })
  t.equal(identity.status, 200)
})

t.test('req.body set by someone else is kept; the context still gets ours', async (t) => {
  const preset: Middleware = (req, _res, next) => { (req as ConnectRequest).body = 'preset'; next() }
  const s = await serve(t, { consumes: [J] }, [preset])
  t.same((await post(s, J, '{"a":1}')).json(), { body: { a: 1 }, bodyType: J, reqBody: 'preset' })
})

t.test('consumes as a function; an empty list skips the body', async (t) => {
  const s = await serve(t, { consumes: (req) => (req.url === '/tasks' ? [J] : []) })
  t.same((await post(s, J, '{"a":1}')).json().body, { a: 1 })
  const r = await request(s.base, 'POST', '/tasks/1/start', { body: 'ignored' })
  t.equal(r.status, 200)
  t.same(r.json().body, null)
})

t.test('a client that disconnects mid-body does not hang or crash the server', async (t) => {
  const s = await serve(t, { consumes: [J] })
  await new Promise<void>((resolve) => {
    const socket = net.connect(s.port, '127.0.0.1', () => {
      socket.write('POST /tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{"a":')
      setTimeout(() => { socket.destroy(); resolve() }, 50)
    })
    socket.on('error', () => {})
  })
  for (let i = 0; i < 50 && s.errors.length === 0; i++) await new Promise((r) => setTimeout(r, 10))
  t.same(s.errors, [{ status: 400, code: 'request_aborted' }])
  t.equal((await post(s, J, '{"still":"up"}')).status, 200)
})

t.test('matchContentType and readBody in a plain node:http handler', async (t) => {
  const server = http.createServer((req, res) => {
    let type: string
    try {
      type = matchContentType(req, [J, X])
    } catch (err) {
      res.statusCode = (err as { status: number }).status
      res.end()
      return
    }
    readBody(req, type, { limit: 1000 }).then((value) => res.end(JSON.stringify(value)), (err: { status: number }) => {
      res.statusCode = err.status ?? 500
      res.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.same((await request(base, 'POST', '/', { headers: { 'Content-Type': X }, body: '<a><b>1</b></a>' })).json(), { a: { b: '1' } })
  t.equal((await request(base, 'POST', '/', { headers: { 'Content-Type': 'text/csv' }, body: 'a,b' })).status, 415)
  t.equal((await request(base, 'POST', '/', { headers: { 'Content-Type': J }, body: '{' })).status, 400)
  await t.rejects(readBody({ headers: {} } as http.IncomingMessage, J, { limit: 0 }), TypeError)
})

t.test('factory validates options', async (t) => {
  const bad: unknown[] = [undefined, null, {}, { consumes: [] }, { consumes: 'application/json' }, { consumes: ['json'] },
    { consumes: [J], limit: 0 }, { consumes: [J], limit: 1.5 }, { consumes: [J], limit: '1kb' },
    { consumes: [J], maxDepth: 0 }, { consumes: [J], maxDepth: 1e6 }]
  for (const options of bad) t.throws(() => body(options as BodyMiddlewareOptions), TypeError, JSON.stringify(options))
  t.doesNotThrow(() => body({ consumes: [`${J}; charset=utf-8`], limit: 1, maxDepth: 1 }))
})
