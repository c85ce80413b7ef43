/** Maps backend outcomes to HTTP problems: the backend knows nothing of HTTP. */
import { BackendError } from '../backend/types.js'
import { HttpError } from '../middleware/problem.js'

const STATUS: Record<BackendError['code'], number> = {
  not_found: 404,
  name_taken: 409,
  in_use: 409,
  active: 409,
  state_changed: 409,
  already_initialized: 409
}

/** Convert a `BackendError` into an `HttpError` carrying its message; rethrow anything else. */
export function toHttpError(err: unknown): unknown {
  if (err instanceof BackendError) {
    return new HttpError(STATUS[err.code], err.message, { code: err.code })
  }
  return err
}

export function notFound(what: string): HttpError {
  return new HttpError(404, `${what} does not exist; list the collection to find current URIs.`, { code: 'not_found' })
}

export function badRequest(detail: string, code = 'invalid_field'): HttpError {
  return new HttpError(400, detail, { code })
}

export function conflict(detail: string, code = 'conflict'): HttpError {
  return new HttpError(409, detail, { code })
}

export function forbidden(detail: string): HttpError {
  return new HttpError(403, detail, { code: 'forbidden' })
}
