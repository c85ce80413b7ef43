/**
 * Reliability: property-based fuzzing of a running server with fast-check.
 *
 * Property 1 generates whole HTTP requests: methods (standard, WebDAV and
 * made-up tokens), paths (every route of spec §1.2, the pages and assets
 * around them, junk segments, odd ids, every kind of suffix, `_method`
 * queries, DuraCloud look-up parameters), headers (Accept, Content-Type,
 * overrides, Origin/Sec-Fetch-*, If-None-Match, Host, Content-Encoding, random
 * ones), credentials (valid admin and user Basic, wrong and unknown ones,
 * malformed headers, valid/forged/garbage session cookies) and bodies
 * (entity-shaped JSON and XML with random field values, task/store data with
 * real and bogus references, forms, raw JSON, random text and bytes).
 * Every answer must arrive within 10 s, be below 500 (502 only from a
 * DuraCloud look-up, which this test points at a closed loopback port), carry
 * the protective headers, and — when it is an error — be a problem document
 * with `Cache-Control: no-store`, without stack traces or known secrets.
 *
 * Property 2 sends raw bytes (mangled request lines, bad framing, smuggling
 * shapes, oversized headers) and half-closes: the server must answer below
 * 500 or close, within 5 s.
 *
 * Afterwards the server still answers `GET service` and authenticated reads.
 * The seed is fixed (`FC_SEED` overrides it); `FC_RUNS` / `FC_RAW_RUNS` set
 * the number of runs.
 */
import t from 'tap'
import fc from 'fast-check'
import path from 'node:path'
import { startTestServer, ADMIN } from '../helpers/server.js'
import type { TestServer } from '../helpers/server.js'
import { basicHeader } from '../helpers/http.js'
import type { Reply } from '../helpers/http.js'
import { writeFixtureStore } from '../fixtures/foxml-fixture.js'
import { closedPort, formLogin, json, rawExchange, recordResult, requestVerbatim, waitFor } from './helpers.js'
import type { VerbatimOptions } from './helpers.js'

const SEED = Number(process.env.FC_SEED ?? 20240501)
const RUNS = Number(process.env.FC_RUNS ?? 3000)
const RAW_RUNS = Number(process.env.FC_RAW_RUNS ?? 500)
t.setTimeout(Math.max(120_000, (RUNS + RAW_RUNS) * 40))

const USER: [string, string] = ['fuzz-user', 'fuzz-user-secret']
const MALLORY: [string, string] = ['mallory', 'mallory-secret']
const STORE_SECRET = 'store-secret-9f2c'
/** Strings that must never appear in any answer. */
const SECRETS = [ADMIN[1], USER[1], MALLORY[1], STORE_SECRET]
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS'])
const STACK_TRACE = /\n\s+at [^\n]*:\d+:\d+|node:internal|\/src\/[\w/-]+\.[jt]s/

// ---------------------------------------------------------------------------
// Arbitraries

const printable = fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c))
const headerText = (maxLength = 40) => fc.string({ unit: printable, maxLength })
const urlChar = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&\'()*+,;=:@'.split('')) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 255 }).map((b) => '%' + b.toString(16).toUpperCase().padStart(2, '0')) },
  { weight: 1, arbitrary: fc.constantFrom('%', '%E0%A4%A', '%2e%2e', '..', '%2F', '%00', '%C0%AF') }
)
const junkSegment = fc.array(urlChar, { maxLength: 12 }).map((a) => a.join(''))

const ID = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('1', '2', '3', '4', '5') },
  { weight: 3, arbitrary: fc.constantFrom('0', '999999', '-1', '1e3', '01', 'abc', '99999999999999999999', '9007199254740993', '%31', '1%00', '%201', 'current', '1.5') },
  { weight: 1, arbitrary: fc.nat().map(String) },
  { weight: 1, arbitrary: junkSegment }
)
const API_TEMPLATES = [
  'service', 'users', 'users/current', 'users/{id}', 'tasks', 'tasks/{id}', 'objectSets', 'objectSets/{id}',
  'objectStores', 'objectStores/{id}', 'taskLogs', 'taskLogs/{id}', 'taskLogs/{id}/content',
  'taskLogs/{id}.json/content', 'taskLogs/{id}.xml/content', 'duracloud/providerAccounts', 'duracloud/spaces'
]
const PAGE_PATHS = ['/', '/login', '/logout', '/j_spring_security_check', '/j_spring_security_logout', '/js/cloudsync-api.js', '/js/cloudsync-client.js', '/css/site.css', '/images/', '/js/../../package.json', '/api', '/api/rest', '/api/rest/']
const SUFFIX = fc.oneof(
  { weight: 6, arbitrary: fc.constant('') },
  { weight: 3, arbitrary: fc.constantFrom('.json', '.xml') },
  { weight: 2, arbitrary: fc.constantFrom('/', '.json/', '.JSON', '.xml.json', '%2Ejson', '/.json', '.json/content', '//', '.yaml') }
)

function apiPathArb(closed: number) {
  const duraQuery = fc.record({
    url: fc.constantFrom(`http://127.0.0.1:${closed}/durastore`, `http://127.0.0.1:${closed}/`, 'ftp://127.0.0.1/x', 'not a url', '', 'http://user:pw@127.0.0.1:1/', 'http://evil.example/durastore'),
    username: fc.oneof(fc.constantFrom('u', ''), headerText(10)),
    password: fc.oneof(fc.constantFrom('p', ''), headerText(10)),
    providerAccountId: fc.oneof(fc.constantFrom('0', '1', ''), headerText(6))
  }, { requiredKeys: [] }).map((q) => '?' + new URLSearchParams(q as Record<string, string>).toString())
  const query = fc.oneof(
    { weight: 10, arbitrary: fc.constant('') },
    { weight: 2, arbitrary: fc.constantFrom('?_method=PATCH', '?_method=DELETE', '?_method=delete', '?_method=GET', '?_method=', '?_method=PATCH&_method=DELETE', '?_method=POST', '?x=1&_method=%20DELETE%20') },
    { weight: 2, arbitrary: duraQuery },
    { weight: 1, arbitrary: fc.array(junkSegment, { maxLength: 4 }).map((a) => '?' + a.join('&')) }
  )
  const api = fc.tuple(fc.constantFrom(...API_TEMPLATES), ID, SUFFIX).map(([template, id, suffix]) => {
    const p = template.replace('{id}', id)
    // `.../content` keeps its suffix inside the template; elsewhere the suffix goes last.
    return '/api/rest/' + p + suffix
  })
  const junk = fc.tuple(fc.constantFrom('/api/rest/', '/', '/api/rest/users/', '/api/rest/taskLogs/1/'), fc.array(junkSegment, { minLength: 1, maxLength: 4 })).map(([prefix, segs]) => prefix + segs.join('/'))
  const page = fc.constantFrom(...PAGE_PATHS)
  return fc.tuple(fc.oneof({ weight: 12, arbitrary: api }, { weight: 2, arbitrary: page }, { weight: 2, arbitrary: junk }), query).map(([p, q]) => p + q)
}

const METHOD = fc.oneof(
  { weight: 20, arbitrary: fc.constantFrom('GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS') },
  { weight: 2, arbitrary: fc.constantFrom('PUT', 'TRACE', 'PROPFIND', 'SEARCH', 'PURGE', 'LINK', 'MKCOL', 'REPORT') },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Z]{1,8}$/).filter((m) => m !== 'CONNECT') }
)

const VENDOR_NAMES = ['serviceinfo', 'serviceinit', 'user', 'users', 'task', 'tasks', 'objectset', 'objectsets', 'objectstore', 'objectstores', 'tasklog', 'tasklogs', 'provideraccounts', 'spaces']
const vendorType = fc.tuple(fc.constantFrom(...VENDOR_NAMES), fc.constantFrom('+json', '+xml')).map(([n, f]) => `application/vnd.fcrepo-cloudsync.${n}${f}`)
const ACCEPT = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('application/json', 'application/xml', '*/*', 'text/html', 'application/*', 'text/plain', 'application/problem+json', 'text/html,application/xhtml+xml,*/*;q=0.8') },
  { weight: 3, arbitrary: vendorType },
  { weight: 2, arbitrary: fc.constantFrom('application/json;q=0', ';;;,,,q=abc', 'application/xml;q=2, */*;q=-1', 'application/vnd.fcrepo-cloudsync.task+json;q=0.5, application/xml;q=0.6', '*/*;q=0', 'text/*', '') },
  { weight: 1, arbitrary: headerText() }
)
const CONTENT_TYPE = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('application/json', 'application/xml', 'application/x-www-form-urlencoded', 'text/xml') },
  { weight: 4, arbitrary: vendorType },
  { weight: 2, arbitrary: fc.constantFrom('text/plain', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/json;charset=latin1', 'APPLICATION/JSON', 'application/json, application/xml', '', 'application/', '/json') },
  { weight: 1, arbitrary: headerText() }
)

interface Actors { adminCookie: string; userCookie: string; cookieName: string }

function authArb() {
  return fc.oneof(
    { weight: 10, arbitrary: fc.constant(basicHeader(...ADMIN)) },
    { weight: 4, arbitrary: fc.constant(basicHeader(...USER)) },
    { weight: 5, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constant(basicHeader(MALLORY[0], 'guess')) },
    { weight: 1, arbitrary: fc.constantFrom('ghost-1', 'ghost-2', 'ghost-3').map((n) => basicHeader(n, 'x')) },
    { weight: 1, arbitrary: fc.constantFrom('Basic', 'Basic ', 'Basic ====', 'Basic bm9jb2xvbg==', 'Bearer abc', 'basic YWRtaW46YWRtaW4tcGFzcw==', 'Basic ' + 'A'.repeat(5000), 'Digest username="admin"', 'Basic Z2hvc3Q6\u00ff') },
    { weight: 1, arbitrary: headerText(60) }
  )
}

function cookieArb(actors: () => Actors) {
  return fc.oneof(
    { weight: 12, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: fc.constant('admin').map(() => actors().adminCookie) },
    { weight: 2, arbitrary: fc.constant('user').map(() => actors().userCookie) },
    { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{43}$/).map((id) => `${actors().cookieName}=${id}`) },
    { weight: 1, arbitrary: headerText(80) }
  )
}

/** `arb` in `percent` % of cases, otherwise absent. */
function sometimes<T>(percent: number, arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.oneof({ weight: 100 - percent, arbitrary: fc.constant(undefined) }, { weight: percent, arbitrary: arb })
}

function headersArb(origin: string) {
  return fc.record({
    'Accept': sometimes(70, ACCEPT),
    'Content-Type': sometimes(15, CONTENT_TYPE),
    'X-HTTP-Method-Override': sometimes(8, fc.oneof(fc.constantFrom('PATCH', 'DELETE', 'patch', ' DELETE ', 'GET', 'POST', 'DELETE, PATCH', '', 'TRACE'), headerText(10))),
    'X-Requested-With': sometimes(30, fc.constantFrom('XMLHttpRequest', 'XMLHttpRequest', 'fetch', '')),
    'Origin': sometimes(20, fc.oneof(fc.constant(origin), fc.constantFrom('https://evil.example', 'null', origin.toUpperCase(), origin + ':80', ''), headerText(30))),
    'Referer': sometimes(8, fc.oneof(fc.constant(origin + '/'), fc.constantFrom('https://evil.example/x', 'javascript:alert(1)'), headerText(30))),
    'Sec-Fetch-Site': sometimes(10, fc.constantFrom('same-origin', 'same-site', 'cross-site', 'none', 'bogus')),
    'Sec-Fetch-Mode': sometimes(10, fc.constantFrom('navigate', 'cors', 'no-cors', 'same-origin', 'websocket')),
    'If-None-Match': sometimes(8, fc.oneof(fc.constantFrom('*', '"abc"', 'W/"x", "y"', '"', ',,,', 'W/'), headerText(40))),
    'Content-Encoding': sometimes(4, fc.constantFrom('gzip', 'deflate', 'br', 'identity', 'gzip, identity')),
    'Host': sometimes(5, fc.constantFrom('example.org', 'a:b:c', '[::1]:80', 'evil.example:8080', '')),
    'X-Forwarded-Host': sometimes(3, fc.constantFrom('evil.example', '')),
    'X-Forwarded-Proto': sometimes(3, fc.constantFrom('https', 'gopher')),
    'Range': sometimes(3, fc.constantFrom('bytes=0-10', 'bytes=-1', 'bytes=x')),
    'Expect': sometimes(3, fc.constantFrom('100-continue', 'nonsense'))
  }).chain((known) =>
    sometimes(10, fc.dictionary(fc.stringMatching(/^X-[A-Za-z0-9-]{1,12}$/), headerText(30), { minKeys: 1, maxKeys: 3 })).map((extra) => {
      const out: Record<string, string> = { ...extra }
      for (const [k, v] of Object.entries(known)) if (v !== undefined) out[k] = v
      return out
    }))
}

/** Field values: the valid-looking ones a client would send, plus every wrong JSON type. */
function fieldValue(valid: readonly unknown[]) {
  return fc.oneof(
    { weight: 24, arbitrary: fc.constantFrom(...valid) },
    { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 10 }) },
    { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null)) },
    { weight: 1, arbitrary: fc.oneof(fc.array(fc.nat(), { maxLength: 2 }), fc.dictionary(fc.string({ maxLength: 4 }), fc.nat(), { maxKeys: 2 })) }
  )
}

function entityArb(api: string, storeRoot: string, closed: number) {
  const ref = fc.constantFrom(`${api}/objectSets/1`, 'objectSets/1.json', 'objectSets/2', 'objectSets/999', `${api}/objectStores/1`, 'objectStores/1.xml', 'objectStores/2', 'objectStores/3', 'objectStores/999', 'tasks/1', 'http://other.example/x/objectStores/1', '', 'objectStores/', 'objectStores/abc')
  const flag = fc.constantFrom('true', 'false', true, false, 'yes', 1, null)
  const taskData = fc.record({ setUri: ref, storeUri: ref, queryStoreUri: ref, sourceStoreUri: ref, destStoreUri: ref, overwrite: flag, includeManaged: flag, copyExternal: flag, copyRedirect: flag }, { requiredKeys: [] })
    .map((d) => JSON.stringify(d))
  const storeData = fc.record({
    path: fc.constantFrom(path.join(storeRoot, 'fuzz-a'), path.join(storeRoot, 'fuzz-b', 'deeper'), path.join(storeRoot, 'fuzz-src'), '/etc', 'relative/dir', `${storeRoot}/../../escape`, storeRoot, '/dev/null', path.join(storeRoot, 'fuzz-\u0000')),
    url: fc.constantFrom(`http://127.0.0.1:${closed}/fedora`, `https://127.0.0.1:${closed}/durastore`, 'ftp://127.0.0.1/x', 'http://', 'javascript:x'),
    username: fc.constantFrom('fedoraAdmin', '', 1),
    password: fc.constantFrom('pw', '', true),
    providerId: fc.constantFrom('0', 0, ''),
    space: fc.constantFrom('space', ''),
    prefix: fc.constantFrom('', 'fedora/', null)
  }, { requiredKeys: [] }).map((d) => JSON.stringify(d))
  const setData = fc.constantFrom('*', 'demo:*', 'demo:1 demo:2', 'demo:1\ndemo:9', '*:1', '{"queryType":"iTQL","queryText":"select $o from <#ri>"}', '{"queryType":"SQL","queryText":""}', '{"queryType":"SPARQL"}', '[]', '')
  const data = fc.oneof(taskData, storeData, setData, fc.json({ maxDepth: 2 }), fc.string({ maxLength: 30 }), fc.constant('x'.repeat(33_000)))
  const fields = fc.record({
    name: fieldValue(['Fuzz A', 'Fuzz B', '  padded  ', '', 'x'.repeat(65), 'x'.repeat(257), 'All Objects', 'admin', 'fuzz-user', 'ünïcødé ✓', '2012', 'true']),
    type: fieldValue(['list', 'copy', 'pidPattern', 'pidList', 'query', 'fedora', 'duracloud', 'filesystem', 'LIST', '']),
    state: fieldValue(['Idle', 'Starting', 'Running', 'Pausing', 'Paused', 'Resuming', 'Canceling', 'idle', '']),
    data,
    schedule: fieldValue(['', 'nightly', 'x'.repeat(1025)]),
    admin: fieldValue([true, false, 'true', 'false']),
    enabled: fieldValue([true, false, 'true', 'false']),
    password: fieldValue(['pw', '', ' ']),
    id: fieldValue(['', '1', 1, '2']),
    activeLogId: fieldValue(['', '1', 1]),
    uri: fieldValue([`${api}/tasks/1`]),
    initialAdminUsername: fieldValue(['admin2', '']),
    initialAdminPassword: fieldValue(['pw', '']),
    constructor: fc.constant({ prototype: {} })
  }, { requiredKeys: [] })
  return fields
}

/** An XML rendering of a field object (values escaped; nested values flattened to text). */
function toXml(root: string, fields: Record<string, unknown>): string {
  const esc = (v: string) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
  const body = Object.entries(fields).map(([k, v]) => {
    const name = /^[A-Za-z_][\w.-]*$/.test(k) ? k : 'bad'
    return v === null ? `<${name}/>` : `<${name}>${esc(typeof v === 'string' ? v : JSON.stringify(v) ?? '')}</${name}>`
  }).join('')
  return `<${root}>${body}</${root}>`
}

const ROOTS = ['user', 'task', 'objectSet', 'objectStore', 'serviceInit', 'users', 'x', '']
const VENDOR_OF: Record<string, string> = { user: 'user', task: 'task', objectSet: 'objectset', objectStore: 'objectstore', serviceInit: 'serviceinit' }

interface Body {
  kind: string
  text: string | Buffer
  /** The Content-Type a real client would send with it. */
  type: string
}

const jsonType = (root: string) => fc.constantFrom('application/json', VENDOR_OF[root] === undefined ? 'application/json' : `application/vnd.fcrepo-cloudsync.${VENDOR_OF[root]}+json`)
const xmlType = (root: string) => fc.constantFrom('application/xml', VENDOR_OF[root] === undefined ? 'text/xml' : `application/vnd.fcrepo-cloudsync.${VENDOR_OF[root]}+xml`)

let unique = 0
/** Field objects a well-behaved client would send for `root` (every rule satisfied, names fresh). */
function validFieldsArb(api: string, storeRoot: string, root: string, create: boolean): fc.Arbitrary<Record<string, unknown>> {
  const set = fc.constantFrom(`${api}/objectSets/1`, 'objectSets/2.json', `${api}/objectSets/3`)
  switch (root) {
    case 'user':
      return create
        ? fc.record({ admin: fc.constantFrom(false, 'false', true), enabled: fc.constantFrom(true, 'true', false) }).map((u) => ({ ...u, name: `gen-user-${++unique}`, password: 'gen-pw' }))
        : fc.oneof(fc.record({ enabled: fc.constantFrom(true, false, 'false') }), fc.record({ admin: fc.constantFrom('true', false) }), fc.constant({ name: `renamed-${++unique}` }), fc.constant({ password: 'new-pw' }))
    case 'objectSet':
      return create
        ? fc.record({ type: fc.constantFrom('pidPattern', 'pidList'), data: fc.constantFrom('*', 'demo:*', 'demo:1 demo:2') }).map((o) => ({ ...o, name: `Gen set ${++unique}` }))
        : fc.oneof(fc.record({ data: fc.constantFrom('demo:7', '*') }), fc.constant({ name: `Gen set ${++unique}` }))
    case 'objectStore':
      return fc.constantFrom('a', 'b', 'c').map((d) => ({ name: `Gen store ${++unique}`, type: 'filesystem', data: JSON.stringify({ path: path.join(storeRoot, 'gen', d) }) }))
    case 'task':
      return create
        ? fc.record({ state: fc.constantFrom('Idle', 'Starting'), setUri: set, type: fc.constantFrom('list', 'copy') }).map((x) => ({
          name: `Gen task ${++unique}`, type: x.type, state: x.state,
          data: JSON.stringify(x.type === 'list'
            ? { setUri: x.setUri, storeUri: `${api}/objectStores/1` }
            : { setUri: x.setUri, queryStoreUri: 'objectStores/1', sourceStoreUri: 'objectStores/1', destStoreUri: 'objectStores/3', overwrite: 'true', includeManaged: true, copyExternal: 'false', copyRedirect: 'false' })
        }))
        : fc.oneof(fc.constantFrom('Starting', 'Canceling', 'Pausing', 'Resuming', 'Idle').map((state) => ({ state })), fc.constant({ schedule: 'nightly' }))
    case 'serviceInit':
      return fc.constant({ initialAdminUsername: 'second', initialAdminPassword: 'pw' })
    default:
      return fc.constant({})
  }
}

function validEntityArb(api: string, storeRoot: string, root: string, create: boolean): fc.Arbitrary<Body> {
  return validFieldsArb(api, storeRoot, root, create).chain((fields) => fc.oneof(
    { weight: 3, arbitrary: jsonType(root).map((type): Body => ({ kind: 'valid-json', text: JSON.stringify({ [root]: fields }), type })) },
    { weight: 1, arbitrary: xmlType(root).map((type): Body => ({ kind: 'valid-xml', text: toXml(root, fields), type })) }
  ))
}

/** A fuzzed body for `root`: right wrapper and type, random fields. */
function fuzzedEntityArb(api: string, storeRoot: string, closed: number, root: string): fc.Arbitrary<Body> {
  return entityArb(api, storeRoot, closed).chain((fields) => fc.oneof(
    jsonType(root).map((type): Body => ({ kind: 'json-entity', text: JSON.stringify({ [root]: fields }), type })),
    xmlType(root).map((type): Body => ({ kind: 'xml-entity', text: toXml(root, fields as Record<string, unknown>), type }))
  ))
}

/**
 * Requests that follow the API's shape: a method the route supports, the
 * right entity wrapper and type, credentials that work — so that the deep
 * paths (validation, conflicts, task starts, look-ups) are reached often.
 */
function coherentArb(api: string, storeRoot: string, closed: number, actors: () => Actors): fc.Arbitrary<Generated> {
  const id = fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 8 }).map(String) }, { weight: 1, arbitrary: ID })
  const suffix = fc.oneof({ weight: 3, arbitrary: fc.constant('') }, { weight: 2, arbitrary: fc.constantFrom('.json', '.xml') }, { weight: 1, arbitrary: SUFFIX })
  const collections: Array<[string, string]> = [['users', 'user'], ['tasks', 'task'], ['objectSets', 'objectSet'], ['objectStores', 'objectStore']]
  const body = (root: string, create: boolean) => fc.oneof(
    { weight: 3, arbitrary: validEntityArb(api, storeRoot, root, create) },
    { weight: 2, arbitrary: fuzzedEntityArb(api, storeRoot, closed, root) }
  )
  const lookupParams = fc.record({
    url: fc.constantFrom(`http://127.0.0.1:${closed}/durastore`, `http://127.0.0.1:${closed}`, 'https://127.0.0.1:1/x', 'http://evil.example/durastore', 'nope'),
    username: fc.constantFrom('u', ' '),
    password: fc.constantFrom('p', ''),
    providerAccountId: fc.constantFrom('0', '1', '')
  }, { requiredKeys: ['url', 'username', 'password'] }).map((q) => new URLSearchParams(q as Record<string, string>).toString())
  type Shape = { method: string; path: string; body?: Body }
  const shapes: fc.Arbitrary<Shape> = fc.oneof(
    ...collections.map(([c, root]) => fc.tuple(suffix, body(root, true)).map(([sx, b]): Shape => ({ method: 'POST', path: `/api/rest/${c}${sx}`, body: b }))),
    ...collections.filter(([c]) => c !== 'objectStores').map(([c, root]) => fc.tuple(id, suffix, body(root, false)).map(([i, sx, b]): Shape => ({ method: 'PATCH', path: `/api/rest/${c}/${i}${sx}`, body: b }))),
    ...[...collections.map(([c]) => c), 'taskLogs'].map((c) => fc.tuple(id, fc.constantFrom('DELETE', 'GET', 'HEAD')).map(([i, m]): Shape => ({ method: m, path: `/api/rest/${c}/${i}` }))),
    fc.tuple(fc.constantFrom('users', 'tasks', 'objectSets', 'objectStores', 'taskLogs', 'service', 'users/current'), suffix).map(([c, sx]): Shape => ({ method: 'GET', path: `/api/rest/${c}${sx}` })),
    fc.tuple(id, fc.constantFrom('/content', '.json/content', '.xml/content')).map(([i, sx]): Shape => ({ method: 'GET', path: `/api/rest/taskLogs/${i}${sx}` })),
    fc.tuple(fc.constantFrom('providerAccounts', 'spaces'), lookupParams, fc.boolean()).map(([which, params, post]): Shape => post
      ? { method: 'POST', path: `/api/rest/duracloud/${which}`, body: { kind: 'form', text: params, type: 'application/x-www-form-urlencoded' } }
      : { method: 'GET', path: `/api/rest/duracloud/${which}.json?${params}` }),
    body('serviceInit', true).map((b): Shape => ({ method: 'POST', path: '/api/rest/service', body: b }))
  )
  const who = fc.oneof(
    { weight: 7, arbitrary: fc.constant({ auth: basicHeader(...ADMIN), cookie: undefined as string | undefined, xhr: false }) },
    { weight: 2, arbitrary: fc.constant({ auth: basicHeader(...USER), cookie: undefined as string | undefined, xhr: false }) },
    { weight: 1, arbitrary: fc.constant(null).map(() => ({ auth: undefined as string | undefined, cookie: actors().adminCookie as string | undefined, xhr: true })) }
  )
  const override = fc.oneof({ weight: 6, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) })
  return fc.tuple(shapes, who, override, sometimes(60, ACCEPT)).map(([shape, w, useOverride, accept]): Generated => {
    const headers: Record<string, string> = {}
    if (accept !== undefined) headers.Accept = accept
    if (w.xhr) headers['X-Requested-With'] = 'XMLHttpRequest'
    let method = shape.method
    if (useOverride && (method === 'PATCH' || method === 'DELETE')) {
      headers['X-HTTP-Method-Override'] = method
      method = 'POST'
    }
    return { method, path: shape.path, headers, auth: w.auth, cookie: w.cookie, body: shape.body }
  })
}

function bodyArb(api: string, storeRoot: string, closed: number): fc.Arbitrary<Body> {
  const entity = fc.tuple(fc.constantFrom(...ROOTS), entityArb(api, storeRoot, closed))
  return fc.oneof(
    { weight: 2, arbitrary: fc.constantFrom('user', 'task', 'objectSet', 'objectStore').chain((root) => validEntityArb(api, storeRoot, root, true)) },
    { weight: 6, arbitrary: entity.chain(([root, fields]) => jsonType(root).map((type): Body => ({ kind: 'json-entity', text: JSON.stringify({ [root]: fields }), type }))) },
    { weight: 3, arbitrary: entity.chain(([root, fields]) => xmlType(root).map((type): Body => ({ kind: 'xml-entity', text: toXml(root || 'r', fields as Record<string, unknown>), type }))) },
    { weight: 1, arbitrary: entity.map(([root, fields]): Body => ({ kind: 'json-proto', text: `{"${root}": {"__proto__": {"admin": true}, "name": ${JSON.stringify(typeof (fields as Record<string, unknown>).name === 'string' ? (fields as Record<string, unknown>).name : 'n')}}}`, type: 'application/json' })) },
    { weight: 2, arbitrary: fc.record({ credentials: fc.constantFrom(ADMIN, USER, [MALLORY[0], 'guess'], ['ghost-1', 'x'], ['', '']), returnTo: fc.constantFrom('/', '//evil.example', '/\\evil', 'https://evil.example', '/api/rest/users.json'), url: fc.constantFrom(`http://127.0.0.1:${closed}/durastore`, 'nope'), providerAccountId: fc.constantFrom('0', '') }, { requiredKeys: [] })
      .map(({ credentials, ...f }): Body => {
        // Wrong passwords only for accounts the fuzzer does not act as: it must not lock itself out.
        const fields: Record<string, string> = { ...(f as Record<string, string>) }
        if (credentials !== undefined) Object.assign(fields, { username: credentials[0], password: credentials[1] })
        return { kind: 'form', text: new URLSearchParams(fields).toString(), type: 'application/x-www-form-urlencoded' }
      }) },
    { weight: 2, arbitrary: fc.json({ maxDepth: 3 }).map((text): Body => ({ kind: 'json', text, type: 'application/json' })) },
    { weight: 1, arbitrary: fc.constantFrom(
      '<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><task><name>&b;</name></task>',
      '<task><name>x</name>' + '<a>'.repeat(100),
      '<task><name><![CDATA[x]]></name></task>',
      '<?xml version="1.0" encoding="UTF-16"?><task/>',
      '<task xmlns="urn:x"><name>x</name></task>'
    ).map((text): Body => ({ kind: 'nasty-xml', text, type: 'application/xml' })) },
    { weight: 1, arbitrary: fc.constantFrom(
      '['.repeat(3000) + ']'.repeat(3000),
      '{"task":' + '{"a":'.repeat(100) + '1' + '}'.repeat(101),
      '{"task":{"name":"a","name":"b"}}',
      '\uFEFF{"task":{}}'
    ).map((text): Body => ({ kind: 'nasty-json', text, type: 'application/json' })) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }).map((text): Body => ({ kind: 'text', text, type: 'text/plain' })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes): Body => ({ kind: 'bytes', text: Buffer.from(bytes), type: 'application/json' })) },
    { weight: 1, arbitrary: fc.nat({ max: 300 * 1024 }).map((n): Body => ({ kind: 'large', text: '{"task":{"name":"' + 'x'.repeat(n) + '"}}', type: 'application/json' })) }
  )
}

// ---------------------------------------------------------------------------

interface Generated {
  method: string
  path: string
  headers: Record<string, string>
  auth: string | undefined
  cookie: string | undefined
  body: Body | undefined
  /** Headers sent twice, with a second, different value. */
  twice?: string[]
  /** Send the body with chunked transfer coding instead of Content-Length. */
  chunked?: boolean
}

/** Second values for headers sent twice (how Node folds them is part of what is tested). */
const SECOND_VALUE: Record<string, string> = {
  'Authorization': basicHeader(...USER),
  'Content-Type': 'text/plain',
  'X-HTTP-Method-Override': 'DELETE',
  'Origin': 'https://evil.example',
  'Accept': 'application/xml',
  'Cookie': 'cloudsync.sid=' + 'B'.repeat(43),
  'Host': 'evil.example',
  'Content-Length': '1',
  'Transfer-Encoding': 'chunked',
  'Sec-Fetch-Site': 'cross-site'
}

t.test('generated requests never get a 5xx, never hang, never leak', async (t) => {
  const started = Date.now()
  const closed = await closedPort()
  const s = await startTestServer(t, { outboundHosts: ['127.0.0.1'] })
  await setUp(s, closed)
  let actors = await login(s)
  const origin = s.base
  const port = Number(new URL(s.base).port)

  const statusCounts = new Map<number, number>()
  const failures: string[] = []
  let requests = 0
  let restores = 0
  let maxMs = 0

  const random: fc.Arbitrary<Generated> = fc.record({
    method: METHOD,
    path: apiPathArb(closed),
    headers: headersArb(origin),
    auth: authArb(),
    cookie: cookieArb(() => actors),
    body: sometimes(45, bodyArb(s.api, s.storeRoot, closed)),
    twice: sometimes(8, fc.subarray(Object.keys(SECOND_VALUE), { minLength: 1, maxLength: 2 })),
    chunked: fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) })
  })
  // Half anything-goes, half shaped like the API so the deep paths are reached.
  const arb = fc.oneof(random, coherentArb(s.api, s.storeRoot, closed, () => actors))

  await fc.assert(fc.asyncProperty(arb, async (g: Generated) => {
    const headers: Record<string, string> = { ...g.headers }
    // A body goes with its natural Content-Type unless one was generated.
    if (g.body !== undefined && headers['Content-Type'] === undefined) headers['Content-Type'] = g.body.type
    if (g.auth !== undefined) headers.Authorization = g.auth
    if (g.cookie !== undefined) headers.Cookie = g.cookie
    const sent: Record<string, string | string[]> = { ...headers }
    for (const name of g.twice ?? []) {
      const first = headers[name] ?? (name === 'Content-Length' && g.body !== undefined ? String(Buffer.byteLength(g.body.text)) : undefined)
      sent[name] = first === undefined ? SECOND_VALUE[name]! : [first, SECOND_VALUE[name]!]
    }
    const options: VerbatimOptions = { headers: sent, timeoutMs: 10_000, chunked: g.chunked === true }
    if (g.body !== undefined) options.body = g.body.text
    const label = () => `${g.method} ${g.path} ${JSON.stringify(sent).slice(0, 400)}${g.chunked === true ? ' chunked' : ''} body=${g.body === undefined ? '-' : `${g.body.kind}:${String(g.body.text).slice(0, 200)}`}`
    const t0 = Date.now()
    let r: Reply
    try {
      r = await requestVerbatim(port, g.method, g.path, options)
    } catch (err) {
      failures.push(`no answer (${(err as Error).message}): ${label()}`)
      return
    } finally {
      requests++
      maxMs = Math.max(maxMs, Date.now() - t0)
    }
    statusCounts.set(r.status, (statusCounts.get(r.status) ?? 0) + 1)
    const problem = violation(g, r)
    if (problem !== undefined) failures.push(`${problem}: ${r.status} ${label()} → ${r.text.slice(0, 300)}`)
    // Keep the actors usable: a generated write may have renamed, demoted, disabled or logged them out.
    if (r.status < 400 && !SAFE.has(g.method) && /\/users\/|logout/.test(g.path)) {
      restores++
      await restoreActors(s, g.body !== undefined && String(g.body.text).includes('password'))
      actors = await refreshLogins(s, actors)
    }
  }), { numRuns: RUNS, seed: SEED, endOnFailure: true })

  t.same(failures.slice(0, 25), [], `no violations in ${requests} requests (seed ${SEED})`)
  t.equal(failures.length, 0, 'violation count')

  // Raw bytes on the socket.
  let rawCount = 0
  const rawFailures: string[] = []
  const rawStatuses = new Map<string, number>()
  await fc.assert(fc.asyncProperty(rawRequestArb(), async (bytes) => {
    const r = await rawExchange(port, bytes, 5000, true)
    rawCount++
    const statuses = [...r.data.matchAll(/(?:^|\r\n)HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]))
    const key = statuses.length === 0 ? 'closed without answer' : String(statuses[0])
    rawStatuses.set(key, (rawStatuses.get(key) ?? 0) + 1)
    if (!r.closed) rawFailures.push(`not closed within 5 s: ${JSON.stringify(bytes.toString('latin1').slice(0, 300))}`)
    if (statuses.some((x) => x >= 500)) rawFailures.push(`5xx: ${JSON.stringify(bytes.toString('latin1').slice(0, 300))} → ${r.data.slice(0, 200)}`)
  }), { numRuns: RAW_RUNS, seed: SEED, endOnFailure: true })
  t.same(rawFailures.slice(0, 25), [], `raw: no 5xx and no hang in ${rawCount} exchanges`)

  // Health afterwards.
  const health = await s.req('GET', '/api/rest/service.json')
  t.equal(health.status, 200, 'GET service answers 200 afterwards')
  await restoreActors(s, true)
  t.equal((await s.admin('GET', '/api/rest/users/current.json')).status, 200, 'authenticated reads still work')
  t.equal((await s.admin('GET', '/api/rest/tasks.json')).status, 200, 'the task list still reads')

  const byClass = (c: number) => [...statusCounts].filter(([k]) => Math.floor(k / 100) === c).reduce((a, [, n]) => a + n, 0)
  recordResult('fuzz', 'Fuzzing (fast-check)', t.passing(), started, [
    ['seed (FC_SEED)', SEED],
    ['generated HTTP requests', requests],
    ['raw-socket exchanges', rawCount],
    ['total requests tried', requests + rawCount],
    ['violations (5xx, hang, missing header, bad error body, leak)', failures.length + rawFailures.length],
    ['answers 2xx / 3xx / 4xx / 5xx', `${byClass(2)} / ${byClass(3)} / ${byClass(4)} / ${byClass(5)}`],
    ['of which 502 (DuraCloud look-up to a closed port)', statusCounts.get(502) ?? 0],
    ['distinct status codes', [...statusCounts.keys()].sort((a, b) => a - b).join(', ')],
    ['raw-socket outcomes', [...rawStatuses].sort().map(([k, n]) => `${k}: ${n}`).join(', ')],
    ['slowest answer (ms)', maxMs],
    ['actor restores after user changes', restores]
  ], [
    'Invariants per generated request: an answer within 10 s; status < 500 except 502 on duracloud/* look-ups; X-Content-Type-Options, X-Frame-Options and Referrer-Policy on every answer of ours; errors are problem documents (or the HTML login page) with Cache-Control: no-store; no stack trace and no known password in any body.',
    'Raw exchanges end with a half-close and must be answered below 500 or closed within 5 s.',
    `Reproduce with FC_SEED=${SEED} FC_RUNS=${RUNS} FC_RAW_RUNS=${RAW_RUNS}.`
  ])
})

/** Why an answer breaks the rules, or undefined. */
function violation(g: Generated, r: Reply): string | undefined {
  const lookup = /\/api\/rest\/duracloud\//.test(g.path)
  if (r.status >= 500 && !(r.status === 502 && lookup)) return '5xx'
  const h = r.headers
  // Node itself answers some requests before any handler runs (a bare 400
  // from its parser, 417 for an unknown Expect): no body, no headers of ours.
  const nodeAnswer = (r.status === 400 || r.status === 417) && h['x-content-type-options'] === undefined && r.text === ''
  if (nodeAnswer) return undefined
  if (h['x-content-type-options'] !== 'nosniff') return 'missing X-Content-Type-Options'
  if (h['x-frame-options'] !== 'DENY') return 'missing X-Frame-Options'
  if (h['referrer-policy'] === undefined) return 'missing Referrer-Policy'
  if (r.status >= 400) {
    if (h['cache-control'] !== 'no-store') return `error with Cache-Control ${h['cache-control']}`
    const type = String(h['content-type'] ?? '')
    const page = /^text\/html/.test(type) && /\/(login|j_spring_security_check)/.test(g.path)
    if (!page && !/^(application\/problem\+(json|xml)|text\/plain)/.test(type)) return `error without a problem document (${type})`
    if (g.method !== 'HEAD' && r.text === '') return 'error with an empty body'
  }
  if (STACK_TRACE.test(r.text)) return 'stack trace in the body'
  for (const secret of SECRETS) if (r.text.includes(secret)) return 'a password in the body'
  return undefined
}

function rawRequestArb() {
  const line = fc.tuple(
    fc.oneof(fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'get', 'G ET', '', 'CONNECT', 'PRI'), fc.stringMatching(/^[A-Z]{1,6}$/)),
    fc.oneof(fc.constantFrom('/api/rest/service', '/api/rest/tasks', '*', 'http://evil.example/api/rest/service', '/api/rest/users/1 x', '', '/\u0000', '/%', '//'), junkSegment.map((s) => '/' + s)),
    fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/0.9', 'HTTP/2.0', 'HTTP/1.1 extra', 'HTTPS/1.1', '')
  ).map(([m, p, v]) => [m, p, v].filter((x) => x !== '').join(' '))
  const header = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom('Host: 127.0.0.1', 'Content-Type: application/json', `Authorization: ${basicHeader(...ADMIN)}`, 'Accept: application/json', 'Connection: close', 'Connection: keep-alive') },
    { weight: 3, arbitrary: fc.constantFrom('Content-Length: 5', 'Content-Length: 0', 'Content-Length: -1', 'Content-Length: 1, 2', 'Content-Length: 99999999999999999999', 'Transfer-Encoding: chunked', 'Transfer-Encoding: gzip, chunked', 'Transfer-Encoding: chunked\r\nContent-Length: 3', 'Transfer-Encoding : chunked', 'Expect: 100-continue') },
    { weight: 2, arbitrary: fc.constantFrom('No-Colon', ': empty-name', 'Folded: a\r\n b', 'X-Nul: a\u0000b', 'X-Big: ' + 'x'.repeat(20_000), 'X-Latin: \u00e9', 'Host: a\r\nHost: b') },
    { weight: 1, arbitrary: fc.tuple(fc.stringMatching(/^[A-Za-z-]{1,10}$/), headerText(20)).map(([n, v]) => `${n}: ${v}`) }
  )
  const body = fc.oneof(fc.constant(''), fc.constantFrom('{"task":{}}', '5\r\nhello\r\n0\r\n\r\n', 'zz\r\nhello\r\n0\r\n\r\n', '0\r\n\r\nGET /api/rest/users HTTP/1.1\r\nHost: x\r\n\r\n', 'abc'), fc.string({ unit: 'binary-ascii', maxLength: 60 }))
  return fc.tuple(line, fc.array(header, { maxLength: 5 }), body, fc.constantFrom('\r\n', '\n', '\r')).map(([l, hs, b, eol]) => Buffer.from(`${l}${eol}${hs.join(eol)}${hs.length > 0 ? eol : ''}${eol}${b}`, 'latin1'))
}

async function setUp(s: TestServer, closed: number): Promise<void> {
  const srcDir = path.join(s.storeRoot, 'fuzz-src')
  await writeFixtureStore(srcDir, { count: 5, largeBytes: 5000 })
  const must = async (r: Promise<Reply>, status: number) => {
    const reply = await r
    if (reply.status !== status) throw new Error(`setup: ${reply.status} ${reply.text}`)
    return reply
  }
  for (const [name, password] of [USER, MALLORY]) {
    await must(s.admin('POST', '/api/rest/users', json({ user: { name, password, admin: false, enabled: true } })), 201)
  }
  await must(s.admin('POST', '/api/rest/objectStores', json({ objectStore: { name: 'fuzz source', type: 'filesystem', data: JSON.stringify({ path: srcDir }) } })), 201)
  await must(s.admin('POST', '/api/rest/objectStores', json({ objectStore: { name: 'closed fedora', type: 'fedora', data: JSON.stringify({ url: `http://127.0.0.1:${closed}/fedora`, username: 'fedoraAdmin', password: STORE_SECRET }) } })), 201)
  await must(s.admin('POST', '/api/rest/objectStores', json({ objectStore: { name: 'fuzz dest', type: 'filesystem', data: JSON.stringify({ path: path.join(s.storeRoot, 'fuzz-dest') }) } })), 201)
  await must(s.admin('POST', '/api/rest/objectSets', json({ objectSet: { name: 'two', type: 'pidList', data: 'demo:1 demo:2' } })), 201)
  const task = await must(s.admin('POST', '/api/rest/tasks', json({ task: { name: 'seed run', type: 'list', state: 'Starting', data: JSON.stringify({ setUri: 'objectSets/1', storeUri: 'objectStores/1' }) } })), 201)
  await waitFor(async () => {
    const r = await s.admin('GET', task.headers.location!, { headers: { Accept: 'application/json' } })
    return r.json().task.state === 'Idle' ? true : undefined
  }, 15_000, 'the seed run to finish')
}

async function login(s: TestServer): Promise<Actors> {
  const adminCookie = await formLogin(s.base, ...ADMIN)
  const userCookie = await formLogin(s.base, ...USER)
  return { adminCookie, userCookie, cookieName: adminCookie.split('=')[0]! }
}

/** Log the actors in again where their session no longer works. */
async function refreshLogins(s: TestServer, actors: Actors): Promise<Actors> {
  const alive = async (cookie: string) => (await s.req('GET', '/api/rest/users/current', { headers: { Cookie: cookie, 'X-Requested-With': 'XMLHttpRequest' } })).status === 200
  const adminCookie = (await alive(actors.adminCookie)) ? actors.adminCookie : await formLogin(s.base, ...ADMIN)
  const userCookie = (await alive(actors.userCookie)) ? actors.userCookie : await formLogin(s.base, ...USER)
  return { adminCookie, userCookie, cookieName: actors.cookieName }
}

/**
 * Put the admin and the fuzz user back as they were (name, role, enabled,
 * and the password when the request may have changed it). Direct backend
 * calls: cheap unless a password must be hashed.
 */
async function restoreActors(s: TestServer, passwordTouched: boolean): Promise<void> {
  const b = s.backend
  for (const [[name, password], admin] of [[ADMIN, true], [USER, false]] as const) {
    const users = await b.listUsers()
    const wanted = name === ADMIN[0] ? users.find((u) => u.id === 1) : users.find((u) => u.name === name) ?? users.find((u) => u.id === 2)
    const squatter = users.find((u) => u.name === name && u.id !== wanted?.id)
    if (squatter !== undefined) await b.deleteUser(squatter.id)
    if (wanted === undefined) {
      await b.createUser({ name, password, admin, enabled: true })
    } else if (passwordTouched || wanted.name !== name || wanted.admin !== admin || !wanted.enabled) {
      await b.updateUser(wanted.id, { name, admin, enabled: true, ...(passwordTouched ? { password } : {}) })
    }
  }
}
