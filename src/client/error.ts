/**
 * CloudSyncError — the one error type the Node client rejects with for
 * anything the server (or the network) refused.
 */
import type { ProblemDocument } from './types.js'

/** Why a request failed, coarsely. */
export type CloudSyncErrorKind =
  /** The server answered with an error status; see `status` and `problem`. */
  | 'http'
  /** No answer: connection refused, DNS failure, TLS failure. `status` is 0. */
  | 'network'
  /** No answer within the client's `timeoutMs`. `status` is 0. */
  | 'timeout'
  /** A success status with a body that is not the expected JSON (e.g. an HTML page). */
  | 'unexpected_response'

export interface CloudSyncErrorInit {
  kind: CloudSyncErrorKind
  status: number
  method: string
  url: string
  problem?: ProblemDocument | undefined
  body?: string | undefined
  retryAfter?: number | undefined
  cause?: unknown
}

/**
 * A failed CloudSync request. `status` is the HTTP status (0 when no answer
 * arrived); `problem` is the parsed RFC 9457 problem document when the
 * server sent one, and its `detail` is the error message.
 *
 * @example
 * try {
 *   await client.deleteTask(task)
 * } catch (err) {
 *   if (err instanceof CloudSyncError && err.status === 409) console.log(err.problem?.detail)
 *   else throw err
 * }
 */
export class CloudSyncError extends Error {
  readonly kind: CloudSyncErrorKind
  /** HTTP status, or 0 when no response arrived. */
  readonly status: number
  /** The request method, e.g. `PATCH`. */
  readonly method: string
  /** The request URL. */
  readonly url: string
  /** The problem document of the response, when it carried one. */
  readonly problem: ProblemDocument | undefined
  /** The response body as text when it was not a problem document (at most 2 000 characters). */
  readonly body: string | undefined
  /** Seconds to wait before retrying, from a `Retry-After` header (e.g. on 429). */
  readonly retryAfter: number | undefined

  constructor(message: string, init: CloudSyncErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause })
    this.name = 'CloudSyncError'
    this.kind = init.kind
    this.status = init.status
    this.method = init.method
    this.url = init.url
    this.problem = init.problem
    this.body = init.body
    this.retryAfter = init.retryAfter
  }
}
