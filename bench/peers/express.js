/**
 * Peer 2: Express 5 + express-basic-auth + method-override + res.json —
 * the way most Node apps are written.
 */
import http from 'node:http'
import express from 'express'
import basicAuth from 'express-basic-auth'
import methodOverride from 'method-override'
import { ADMIN, REALM, objectSet, setChanges, unauthorized, usersList, usersXml } from './fixture.js'
import { listen } from './listen.js'

const app = express()
app.use(methodOverride('_method'))
app.use(basicAuth({
  users: { [ADMIN.name]: ADMIN.password },
  challenge: true,
  realm: REALM,
  unauthorizedResponse: (req) => unauthorized(req.path)
}))
app.use(express.json())

app.get('/api/rest/users.json', (req, res) => {
  res.set('Cache-Control', 'private, no-cache')
  res.json(usersList(req.headers.host, '.json'))
})
app.get('/api/rest/users.xml', (req, res) => {
  res.set('Cache-Control', 'private, no-cache')
  res.type('application/xml').send(usersXml(req.headers.host))
})
app.patch('/api/rest/objectSets/:id', (req, res) => {
  const changes = setChanges(req.body)
  if (changes === undefined) return res.status(400).send('Send {"objectSet":{…}} as JSON.')
  res.set('Cache-Control', 'no-store')
  res.json(objectSet(req.headers.host, changes))
})

listen(http.createServer(app), 'express 5')
