/**
 * Load generator for the reliability suite, run as its own process so that
 * it does not share an event loop with the server or the test:
 *
 *     node test/reliability/load-client.mjs '{"url":"http://127.0.0.1:8080","seconds":60,"connections":12,"authorization":"Basic …"}'
 *
 * Every connection loops over a mixed read/write sequence: list tasks, list
 * task logs, create an object set, read it, patch it, list sets as XML,
 * delete the set, read the service document. Prints one JSON line with the
 * autocannon figures on stdout.
 */
import autocannon from 'autocannon'

const config = JSON.parse(process.argv[2] ?? '{}')
const { url, seconds = 60, connections = 12, authorization } = config
if (typeof url !== 'string' || typeof authorization !== 'string') {
  console.error('usage: load-client.mjs \'{"url": "...", "authorization": "Basic ..."}\'')
  process.exit(2)
}

const JSON_TYPE = 'application/json'
const auth = { Authorization: authorization, Accept: JSON_TYPE }
let counter = 0

/** The path of the set this connection created last, or restart the sequence when there is none. */
const onCreated = (request, context) => (context.set === undefined ? undefined : { ...request, path: context.set + (request.suffix ?? '') })

const requests = [
  { method: 'GET', path: '/api/rest/tasks.json', headers: auth },
  { method: 'GET', path: '/api/rest/taskLogs.json', headers: auth },
  {
    method: 'POST',
    path: '/api/rest/objectSets',
    headers: { ...auth, 'Content-Type': JSON_TYPE },
    setupRequest: (request, context) => {
      context.set = undefined
      return { ...request, body: JSON.stringify({ objectSet: { name: `load ${process.pid} ${counter++}`, type: 'pidList', data: 'demo:1 demo:2' } }) }
    },
    onResponse: (status, _body, context, headers) => {
      // Raw headers keep the server's spelling (`Location`).
      const location = headers?.Location ?? headers?.location
      if (status === 201 && typeof location === 'string') context.set = new URL(location).pathname
    }
  },
  { method: 'GET', headers: auth, suffix: '.json', setupRequest: onCreated },
  {
    method: 'PATCH',
    headers: { ...auth, 'Content-Type': JSON_TYPE },
    body: JSON.stringify({ objectSet: { data: 'demo:3\ndemo:4' } }),
    setupRequest: onCreated
  },
  { method: 'GET', path: '/api/rest/objectSets.xml', headers: { Authorization: authorization } },
  { method: 'DELETE', headers: { Authorization: authorization }, setupRequest: onCreated },
  { method: 'GET', path: '/api/rest/service.json' }
]

const result = await autocannon({ url, connections, duration: seconds, timeout: 10, requests })
const statusCounts = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, v]) => [code, Number(v.count)]))
const fivexx = Object.entries(statusCounts).filter(([code]) => code.startsWith('5')).reduce((sum, [, n]) => sum + n, 0)
console.log(JSON.stringify({
  seconds: result.duration,
  connections: result.connections,
  requests: result.requests.total,
  requestsPerSecond: result.requests.average,
  latencyP50: result.latency.p50,
  latencyP99: result.latency.p99,
  latencyMax: result.latency.max,
  errors: result.errors,
  timeouts: result.timeouts,
  non2xx: result.non2xx,
  fivexx,
  resets: result.resets,
  statusCounts
}))
