/**
 * Peer 1: bare `node:http`, hand-written — the practical upper bound.
 * Basic auth decoded and compared in constant time, `_method` override on
 * POST, JSON body parsed, responses serialized with JSON.stringify.
 */
import http from 'node:http'
import { timingSafeEqual } from 'node:crypto'
import { ADMIN, CHALLENGE, unauthorized, usersList, usersXml } from './fixture.js'
import { answerSetPatch, send } from './plain-http.js'
import { listen } from './listen.js'

const EXPECTED = Buffer.from(`${ADMIN.name}:${ADMIN.password}`)
const SET_PATH = /^\/api\/rest\/objectSets\/([0-9]{1,15})$/

function authorized(header) {
  if (header === undefined || !header.startsWith('Basic ')) return false
  const given = Buffer.from(header.slice(6), 'base64')
  return given.length === EXPECTED.length && timingSafeEqual(given, EXPECTED)
}

const server = http.createServer((req, res) => {
  const url = req.url
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  if (!authorized(req.headers.authorization)) {
    send(res, 401, 'application/problem+json', JSON.stringify(unauthorized(path)), { 'WWW-Authenticate': CHALLENGE })
    return
  }
  let method = req.method
  if (method === 'POST' && q !== -1) {
    const override = new URLSearchParams(url.slice(q + 1)).get('_method')
    if (override !== null && override.trim().toUpperCase() === 'PATCH') method = 'PATCH'
  }
  if (method === 'GET' && path === '/api/rest/users.json') return send(res, 200, 'application/json', JSON.stringify(usersList(req.headers.host, '.json')))
  if (method === 'GET' && path === '/api/rest/users.xml') return send(res, 200, 'application/xml', usersXml(req.headers.host))
  if (method === 'PATCH' && SET_PATH.test(path)) return answerSetPatch(req, res)
  send(res, 404, 'text/plain', 'Not found.')
})

listen(server, 'bare node:http')
