/**
 * The measured requests, and the exact response each stack must give before
 * it is measured. `oursOnly` limits a scenario to cloudsync-kit; `baseline`
 * names the scenario of the other stacks it is compared with.
 */
import { ADMIN, PATCH_BODY, objectSet, setChanges, unauthorized, usersList, usersXml } from './peers/fixture.js'
import { basicHeader, request } from './stacks.js'

const BASIC = basicHeader(ADMIN.name, ADMIN.password)
const USERS_JSON = '/api/rest/users.json'

export const SCENARIOS = [
  {
    id: 'a',
    label: 'GET users.json, Basic',
    method: 'GET',
    path: USERS_JSON,
    headers: () => ({ authorization: BASIC }),
    expect: (host) => ({ status: 200, body: JSON.stringify(usersList(host, '.json')) })
  },
  {
    id: 'b',
    label: 'GET users.json, session cookie',
    method: 'GET',
    path: USERS_JSON,
    oursOnly: true,
    baseline: 'a',
    headers: (server) => ({ cookie: server.cookie }),
    expect: (host) => ({ status: 200, body: JSON.stringify(usersList(host, '.json')) })
  },
  {
    id: 'c',
    label: 'GET users.xml, Basic',
    method: 'GET',
    path: '/api/rest/users.xml',
    headers: () => ({ authorization: BASIC }),
    expect: (host) => ({ status: 200, body: usersXml(host) })
  },
  {
    id: 'd',
    label: 'POST objectSets/1?_method=PATCH, JSON',
    method: 'POST',
    path: '/api/rest/objectSets/1?_method=PATCH',
    headers: () => ({ authorization: BASIC, 'content-type': 'application/json' }),
    body: PATCH_BODY,
    expect: (host) => ({ status: 200, body: JSON.stringify(objectSet(host, setChanges(JSON.parse(PATCH_BODY)))) })
  },
  {
    id: 'e',
    label: 'GET users.json, no credentials (401)',
    method: 'GET',
    path: USERS_JSON,
    headers: () => ({}),
    expect: () => ({ status: 401, body: JSON.stringify(unauthorized(USERS_JSON)) })
  }
]

/** Whether `scenario` runs against `stack` (an entry of STACKS). */
export function appliesTo(scenario, stack) {
  return scenario.oursOnly !== true || stack.ours === true
}

/**
 * Send `scenario` once to `server` ({ base, cookie? }); undefined when the
 * status and body are exactly the expected ones, else what differed.
 */
export async function check(server, scenario) {
  const host = new URL(server.base).host
  const expected = scenario.expect(host)
  const r = await request(server.base, scenario.method, scenario.path, { headers: scenario.headers(server), body: scenario.body })
  if (r.status !== expected.status || r.text !== expected.body) {
    return `expected ${expected.status} ${expected.body.slice(0, 120)}…, got ${r.status} ${r.text.slice(0, 200)}`
  }
  return undefined
}
