/**
 * Reusing two cloudsync-kit pieces in an ordinary Express 5 app: HTTP Basic
 * authentication and method override, for a small notes API whose clients
 * sit behind a proxy that only lets GET and POST through. Nothing of
 * CloudSync (resources, SQLite, task engine) is loaded.
 *
 *   npm run build && node dist/examples/reuse-override.js
 *   curl -u alice:wonderland http://127.0.0.1:3000/notes
 *   curl -u alice:wonderland -X POST 'http://127.0.0.1:3000/notes/1?_method=DELETE'
 *
 * In an installed package the imports read
 * `cloudsync-kit/method-override` and `cloudsync-kit/authenticate`.
 */
import { randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import express from 'express'
import type { Express, NextFunction, Request, Response } from 'express'
import { methodOverride } from '../src/middleware/method-override.js'
import { authenticate, contextOf } from '../src/middleware/authenticate.js'
import type { AuthUser } from '../src/middleware/authenticate.js'

const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, keylen: number) => Promise<Buffer>

export interface ReuseOverrideOptions {
  /** Accounts of the demo. Default: one user `alice` / `wonderland`. */
  users?: Array<{ name: string; password: string }>
}

interface Account { id: number; name: string; salt: Buffer; hash: Buffer }

const KEY_LENGTH = 32

/** Salted scrypt, done once per account at start-up. */
function hashPassword(password: string): { salt: Buffer; hash: Buffer } {
  const salt = randomBytes(16)
  return { salt, hash: scryptSync(password, salt, KEY_LENGTH) }
}

/**
 * Build the notes app. `GET /notes`, `POST /notes`, `PATCH /notes/:id`,
 * `DELETE /notes/:id`; PATCH and DELETE also arrive as POST with
 * `?_method=` or `X-HTTP-Method-Override`. Every route needs Basic
 * credentials.
 *
 * @example
 * import { createApp } from './reuse-override.js'
 * createApp({ users: [{ name: 'bob', password: 's3cret-pass' }] }).listen(3000)
 */
export function createApp(options: ReuseOverrideOptions = {}): Express {
  const users = options.users ?? [{ name: 'alice', password: 'wonderland' }]
  const accounts: Account[] = users.map((user, i) => ({ id: i + 1, name: user.name, ...hashPassword(user.password) }))
  // Unknown names are checked against a dummy so they take as long as wrong passwords.
  const dummy = hashPassword(randomBytes(16).toString('hex'))
  const toUser = (a: Account): AuthUser => ({ id: a.id, name: a.name })

  const notes = new Map<number, string>([[1, 'Buy milk'], [2, 'Call Bob']])
  let nextId = 3

  const app = express()
  app.use(methodOverride())
  app.use(authenticate({
    realm: 'Notes',
    async verify(name, password) {
      const account = accounts.find((a) => a.name === name)
      const stored = account ?? dummy
      // Asynchronous on the request path: a KDF must not block the event loop.
      const ok = timingSafeEqual(await scryptAsync(password, stored.salt, KEY_LENGTH), stored.hash)
      return ok && account !== undefined ? toUser(account) : undefined
    },
    async lookup(id) {
      const account = accounts.find((a) => a.id === id)
      return account === undefined ? undefined : toUser(account)
    }
  }))

  const list = () => [...notes].map(([id, text]) => ({ id, text }))
  app.get('/notes', (req, res) => {
    res.json({ user: contextOf(req).user!.name, notes: list() })
  })
  app.post('/notes', express.json({ limit: '4kb' }), (req, res) => {
    const text = (req.body as { text?: unknown } | undefined)?.text
    if (typeof text !== 'string' || text.trim() === '') {
      res.status(400).json({ error: 'Send {"text": "…"} with a non-empty text.' })
      return
    }
    const id = nextId++
    notes.set(id, text)
    res.status(201).location(`/notes/${id}`).json({ id, text })
  })
  app.patch('/notes/:id', express.json({ limit: '4kb' }), (req, res) => {
    const id = Number(req.params.id)
    const text = (req.body as { text?: unknown } | undefined)?.text
    if (!notes.has(id)) {
      res.status(404).json({ error: 'No such note; list them with GET /notes.' })
      return
    }
    if (typeof text !== 'string' || text.trim() === '') {
      res.status(400).json({ error: 'Send {"text": "…"} with a non-empty text.' })
      return
    }
    notes.set(id, text)
    res.json({ id, text })
  })
  app.delete('/notes/:id', (req, res) => {
    if (!notes.delete(Number(req.params.id))) {
      res.status(404).json({ error: 'No such note; list them with GET /notes.' })
      return
    }
    res.status(204).end()
  })
  app.use(errorHandler)
  return app
}

/** Render the pieces' HttpErrors (status, headers such as WWW-Authenticate, safe detail) as JSON. */
function errorHandler(err: unknown, _req: Request, res: Response, _next: NextFunction): void {
  const e = err as { status?: unknown; statusCode?: unknown; headers?: Record<string, string | number | string[]>; detail?: unknown; expose?: unknown; message?: unknown }
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : 500
  if (status >= 500) console.error(err)
  if (e.headers !== undefined) res.set(e.headers)
  const detail = status >= 500 ? 'Internal error; try again later.'
    : typeof e.detail === 'string' ? e.detail
      : e.expose === true && typeof e.message === 'string' ? e.message : 'Request failed.'
  res.status(status).set('Cache-Control', 'no-store').json({ error: detail })
}

// Listen only when run directly (`node dist/examples/reuse-override.js`), not when imported.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const port = Number(process.env.PORT ?? 3000)
  const host = process.env.HOST ?? '127.0.0.1'
  const app = createApp()
  const server = app.listen(port, host, () => {
    const address = server.address()
    const actual = typeof address === 'object' && address !== null ? address.port : port
    console.log(`notes listening on http://${host}:${actual}/notes (user alice, password wonderland)`)
  })
}
