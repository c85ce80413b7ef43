/**
 * The data every benchmark stack serves, and the exact bytes it must answer
 * with. The peers build their responses from here per request (as an app
 * reading a table would); the runner seeds cloudsync-kit's SQLite store with
 * the same users and checks every stack against these bytes.
 */

export const ADMIN = { name: 'admin', password: 'admin-pass' }
export const REALM = 'CloudSync'
export const CHALLENGE = `Basic realm="${REALM}", charset="UTF-8"`

/** 10 users: the initial admin (id 1) and nine others (ids 2–10), in id order. */
export const USERS = [{ id: 1, name: 'admin', admin: true, enabled: true }]
for (let id = 2; id <= 10; id++) USERS.push({ id, name: `user${id}`, admin: false, enabled: true })

/** The password the runner gives the seeded users 2–10 (never used to log in). */
export const SEED_PASSWORD = 'seed-pass'

/** The object set cloudsync-kit creates on initialization (id 1). */
export const OBJECT_SET = { id: 1, name: 'All Objects', type: 'pidPattern', data: '*' }
/** Body of the override scenario: rename set 1 to its current name. */
export const PATCH_BODY = JSON.stringify({ objectSet: { name: OBJECT_SET.name } })

const API = '/api/rest'

/** `{ users: [...] }` as an object: peers serialize it with their own JSON path. */
export function usersList(host, suffix) {
  const base = `http://${host}${API}/users/`
  const items = new Array(USERS.length)
  for (let i = 0; i < USERS.length; i++) {
    const u = USERS[i]
    items[i] = { admin: u.admin, enabled: u.enabled, name: u.name, uri: base + u.id + suffix }
  }
  return { users: items }
}

/** The XML users list, as cloudsync-kit writes it (no escaping needed: names are plain). */
export function usersXml(host) {
  const base = `http://${host}${API}/users/`
  let out = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><users>'
  for (const u of USERS) {
    out += `<user><admin>${u.admin}</admin><enabled>${u.enabled}</enabled><name>${u.name}</name><uri>${base}${u.id}.xml</uri></user>`
  }
  return out + '</users>'
}

/** The object set after applying the override scenario's changes. */
export function objectSet(host, changes) {
  const set = { ...OBJECT_SET, ...changes }
  return { objectSet: { data: set.data, name: set.name, type: set.type, uri: `http://${host}${API}/objectSets/${set.id}` } }
}

/** The 401 problem document for a request without credentials. */
export function unauthorized(instance) {
  return {
    type: 'about:blank',
    title: 'Unauthorized',
    status: 401,
    detail: 'Authentication is required: log in, or send HTTP Basic credentials with the request.',
    instance
  }
}

/** Only the fields the scenario may change are copied from a request body. */
export function setChanges(body) {
  const input = body !== null && typeof body === 'object' ? body.objectSet : undefined
  if (input === null || typeof input !== 'object') return undefined
  const changes = {}
  for (const key of ['name', 'type', 'data']) if (typeof input[key] === 'string') changes[key] = input[key]
  return changes
}
