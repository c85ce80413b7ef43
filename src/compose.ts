/** Run Connect-style middleware in sequence; `done(err?)` gets control at the end or on error. */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Middleware, Next } from './middleware/context.js'

export function compose(stack: readonly Middleware[]): (req: IncomingMessage, res: ServerResponse, done: Next) => void {
  return function composed(req, res, done) {
    let index = 0
    const step: Next = (err) => {
      if (err !== undefined && err !== null) return done(err)
      const mw = stack[index++]
      if (mw === undefined) return done()
      try {
        mw(req, res, step)
      } catch (thrown) {
        done(thrown)
      }
    }
    step()
  }
}
