/**
 * Peer 3: connect + basic-auth + method-override, responses written by hand.
 */
import http from 'node:http'
import { timingSafeEqual } from 'node:crypto'
import connect from 'connect'
import auth from 'basic-auth'
import methodOverride from 'method-override'
import { ADMIN, CHALLENGE, unauthorized, usersList, usersXml } from './fixture.js'
import { answerSetPatch, send } from './plain-http.js'
import { listen } from './listen.js'

const NAME = Buffer.from(ADMIN.name)
const PASSWORD = Buffer.from(ADMIN.password)

function same(given, expected) {
  const b = Buffer.from(given)
  return b.length === expected.length && timingSafeEqual(b, expected)
}

function pathOf(req) {
  const q = req.url.indexOf('?')
  return q === -1 ? req.url : req.url.slice(0, q)
}

const app = connect()
app.use(methodOverride('_method'))
app.use((req, res, next) => {
  const credentials = auth(req)
  // Both compared, so the time does not tell which one was wrong.
  const nameOk = credentials !== undefined && same(credentials.name, NAME)
  const passOk = credentials !== undefined && same(credentials.pass, PASSWORD)
  if (nameOk && passOk) return next()
  send(res, 401, 'application/problem+json', JSON.stringify(unauthorized(pathOf(req))), { 'WWW-Authenticate': CHALLENGE })
})
app.use('/api/rest/users.json', (req, res, next) => {
  if (req.method !== 'GET' || req.url !== '/') return next()
  send(res, 200, 'application/json', JSON.stringify(usersList(req.headers.host, '.json')))
})
app.use('/api/rest/users.xml', (req, res, next) => {
  if (req.method !== 'GET' || req.url !== '/') return next()
  send(res, 200, 'application/xml', usersXml(req.headers.host))
})
app.use('/api/rest/objectSets', (req, res, next) => {
  if (req.method !== 'PATCH' || !/^\/[0-9]{1,15}(?:\?|$)/.test(req.url)) return next()
  answerSetPatch(req, res)
})

listen(http.createServer(app), 'connect')
