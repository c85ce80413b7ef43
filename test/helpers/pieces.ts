/** Harness for the middleware piece tests: run pieces in order over a real loopback server. */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Middleware } from '../../src/middleware/context.js'
import { problemHandler } from '../../src/middleware/problem.js'

export interface Teardown { teardown(fn: () => unknown): void }

/** A listener that runs `pieces` in order; errors become problem documents, falling off the end is a 404. */
export function chain(...pieces: Middleware[]): http.RequestListener {
  const onError = problemHandler({ log: () => {} })
  return (req, res) => {
    let i = 0
    const next = (err?: unknown): void => {
      if (err !== undefined) return onError(err, req, res, () => {})
      const piece = pieces[i++]
      if (piece === undefined) {
        res.statusCode = 404
        res.end()
        return
      }
      piece(req, res, next)
    }
    next()
  }
}

/** Listen on 127.0.0.1 (a free port) until the test ends; resolves with the port. */
export async function serve(tt: Teardown, listener: http.RequestListener, options: http.ServerOptions = {}): Promise<number> {
  const server = http.createServer(options, listener)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  tt.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  return (server.address() as AddressInfo).port
}
