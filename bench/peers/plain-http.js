/**
 * What the two peers without a framework response helper (bare node:http and
 * connect) both write by hand: a response with the scenario's caching
 * headers, and the override scenario's body read, parsed and echoed.
 */
import { objectSet, setChanges } from './fixture.js'

/** One response with its length and the cache policy of the scenarios. */
export function send(res, status, type, text, extra) {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': status === 200 ? 'private, no-cache' : 'no-store', ...extra })
  res.end(text)
}

/** Read the PATCH body (at most 256 KiB), apply its changes to the set, answer 200 with it (400 for anything else). */
export function answerSetPatch(req, res) {
  const chunks = []
  let size = 0
  req.on('data', (c) => {
    size += c.length
    if (size > 262_144) req.destroy()
    else chunks.push(c)
  })
  req.on('end', () => {
    let changes
    try {
      changes = setChanges(JSON.parse(Buffer.concat(chunks).toString('utf8')))
    } catch {
      changes = undefined
    }
    if (changes === undefined) return send(res, 400, 'text/plain', 'Send {"objectSet":{…}} as JSON.')
    send(res, 200, 'application/json', JSON.stringify(objectSet(req.headers.host, changes)))
  })
}
