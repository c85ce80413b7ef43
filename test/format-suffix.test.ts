import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import connect from 'connect'
import { formatSuffix, currentSuffix, withSuffix } from '../src/middleware/format-suffix.js'
import type { FormatSuffixOptions } from '../src/middleware/format-suffix.js'
import { contextOf } from '../src/middleware/context.js'
import type { Middleware } from '../src/middleware/context.js'
import { request } from './helpers/http.js'

interface Teardown { teardown(fn: () => unknown): void }

/** Echo what routing sees: the rewritten url, the recorded format and sample links. */
async function serve(t: Teardown, chain: Middleware[]): Promise<string> {
  const app = connect()
  for (const m of chain) app.use(m)
  app.use((req: http.IncomingMessage, res: http.ServerResponse) => {
    res.setHeader('Content-Type', 'application/json')
    res.end(JSON.stringify({
      url: req.url,
      originalUrl: (req as { originalUrl?: string }).originalUrl,
      format: contextOf(req).format ?? null,
      suffix: currentSuffix(req),
      links: [
        '/api/tasks/3', '/api/tasks/3?view=full#top', '/api/users/', 'http://h:8080/api/users/current',
        'http://h:8080', 'http://h:8080/', '/', '', '//cdn.example/x', 'tasks/4#f'
      ].map((link) => withSuffix(req, link))
    }))
  })
  const server = http.createServer(app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const JSON_FORMAT = { suffix: '.json', type: 'application/json' }
const XML_FORMAT = { suffix: '.xml', type: 'application/xml' }

t.test('suffixes are stripped for routing and recorded (spec §2.4)', async (t) => {
  const base = await serve(t, [formatSuffix()])
  const cases: Array<[string, string, object | null]> = [
    ['/api/tasks.json', '/api/tasks', JSON_FORMAT],
    ['/api/tasks/3.xml', '/api/tasks/3', XML_FORMAT],
    ['/api/duracloud/spaces.json?url=http://x/a.xml&y=1', '/api/duracloud/spaces?url=http://x/a.xml&y=1', JSON_FORMAT],
    ['/api/users.json/', '/api/users', JSON_FORMAT],
    ['/api/users.xml.json', '/api/users.xml', JSON_FORMAT],
    ['/a.json.xml', '/a.json', XML_FORMAT],
    ['/api/objectSets/.json', '/api/objectSets/.json', null],
    ['/.xml', '/.xml', null],
    ['/api/users%2Ejson', '/api/users%2Ejson', null],
    ['/api/users.JSON', '/api/users.JSON', null],
    ['/api/users.Xml', '/api/users.Xml', null],
    ['/api/users.txt', '/api/users.txt', null],
    ['/api/users.json//', '/api/users.json//', null],
    ['/api/a.json/b', '/api/a.json/b', null],
    ['/api/users?format=.json', '/api/users?format=.json', null],
    ['/', '/', null],
    ['/ab', '/ab', null]
  ]
  for (const [path, url, format] of cases) {
    const r = await request(base, 'GET', path)
    const seen = r.json()
    t.equal(seen.url, url, `${path} routes as ${url}`)
    t.same(seen.format, format, `${path} format`)
    t.equal(seen.originalUrl, path, 'originalUrl keeps what the client sent')
    t.equal(r.headers['x-content-type-options'], format === null ? undefined : 'nosniff', `${path} nosniff only with a suffix`)
  }
})

t.test('currentSuffix and withSuffix follow the request', async (t) => {
  const base = await serve(t, [formatSuffix()])
  const plain = (await request(base, 'GET', '/api/tasks')).json()
  t.equal(plain.suffix, '')
  t.same(plain.links, [
    '/api/tasks/3', '/api/tasks/3?view=full#top', '/api/users/', 'http://h:8080/api/users/current',
    'http://h:8080', 'http://h:8080/', '/', '', '//cdn.example/x', 'tasks/4#f'
  ], 'links unchanged without a suffix')

  const json = (await request(base, 'GET', '/api/tasks.json')).json()
  t.equal(json.suffix, '.json')
  t.same(json.links, [
    '/api/tasks/3.json', '/api/tasks/3.json?view=full#top', '/api/users.json', 'http://h:8080/api/users/current.json',
    'http://h:8080', 'http://h:8080/', '/', '', '//cdn.example/x.json', 'tasks/4.json#f'
  ])
  t.equal((await request(base, 'GET', '/api/tasks.xml')).json().links[0], '/api/tasks/3.xml')
})

t.test('applied twice, only one suffix is stripped', async (t) => {
  const base = await serve(t, [formatSuffix(), formatSuffix()])
  const seen = (await request(base, 'GET', '/a.json.xml')).json()
  t.equal(seen.url, '/a.json')
  t.same(seen.format, XML_FORMAT)
})

t.test('custom formats', async (t) => {
  const base = await serve(t, [formatSuffix({ formats: { '.csv': 'text/csv', '.json': 'application/vnd.example+json' } })])
  t.same((await request(base, 'GET', '/r.csv')).json().format, { suffix: '.csv', type: 'text/csv' })
  t.same((await request(base, 'GET', '/r.json')).json().format, { suffix: '.json', type: 'application/vnd.example+json' })
  t.equal((await request(base, 'GET', '/r.xml')).json().url, '/r.xml', 'defaults are replaced, not merged')
})

t.test('factory validates options', async (t) => {
  const bad: unknown[] = [null, { formats: null }, { formats: [] }, { formats: {} }, { formats: { json: 'application/json' } },
    { formats: { '.JSON': 'application/json' } }, { formats: { '.': 'application/json' } }, { formats: { '.json': 'json' } },
    { formats: { '.json': 5 } }]
  for (const options of bad) {
    t.throws(() => formatSuffix(options as FormatSuffixOptions), TypeError, JSON.stringify(options))
  }
})

t.test('works as plain node:http middleware', async (t) => {
  const mw = formatSuffix()
  const server = http.createServer((req, res) => mw(req, res, () => res.end(`${req.url} ${currentSuffix(req)}`)))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.equal((await request(base, 'GET', '/tasks/3.xml?x=1')).text, '/tasks/3?x=1 .xml')
})
