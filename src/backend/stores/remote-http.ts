/**
 * One HTTP request to a remote object store under an idle timeout, as the
 * Fedora and DuraCloud connectors make them. The connector builds the URL,
 * headers and messages; this module sends, keeps time and reads the body.
 *
 * - Redirects are not followed: they would carry the credentials elsewhere.
 * - The request is aborted when `timeoutMs` pass without progress: before the
 *   answer's headers, between pieces of the body being received, and between
 *   pieces of a streamed body being sent (the body calls `touch`).
 * - An outside signal aborts it too (a canceled run).
 */

/** What a request can send; a function is given `touch`, to call as its pieces are taken. */
export type RequestBody = string | URLSearchParams | Uint8Array | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>

export interface ExchangeInit {
  method: string
  headers: Record<string, string>
  body?: RequestBody | ((touch: () => void) => RequestBody)
}

export interface ExchangeState {
  /** Aborted because nothing happened within the timeout. */
  readonly timedOut: boolean
  /** Aborted by the outside signal. */
  readonly canceled: boolean
}

/** The error to throw for a failure: no answer, or a body broken off. */
export type Failure = (err: unknown, state: ExchangeState) => Error

export interface ExchangeOptions {
  timeoutMs: number
  signal?: AbortSignal
  fail: Failure
}

/** An answer whose body may still be read. */
export interface Exchange extends ExchangeState {
  readonly response: Response
  /** Progress: the idle timer starts again. */
  touch(): void
  /** Stop the timer and stop following the outside signal. */
  done(): void
  /** The body's pieces, each one restarting the timer; a read failure goes through `fail` (default: the exchange's). */
  pieces(fail?: Failure): AsyncGenerator<Uint8Array>
  /** The whole body as UTF-8, or `undefined` as soon as it passes `limit` bytes. */
  text(limit?: number, fail?: Failure): Promise<string | undefined>
  /** Stop and release the connection without reading the body. */
  discard(): Promise<void>
}

/**
 * Send one request; resolves when the answer's headers are in, rejects with
 * `options.fail`'s error when there is no answer (timeout and cancel included).
 *
 * @example
 * const x = await exchange(fetch, url, { method: 'GET', headers }, { timeoutMs: 60_000, fail: (err) => new Error(String(err)) })
 * const text = await x.text()
 */
export async function exchange(fetchFn: typeof fetch, url: string | URL, init: ExchangeInit, options: ExchangeOptions): Promise<Exchange> {
  const clock = new Clock(options.timeoutMs, options.signal)
  try {
    const body = typeof init.body === 'function' ? init.body(() => clock.touch()) : init.body
    const request: RequestInit & { duplex?: 'half' } = { method: init.method, headers: init.headers, redirect: 'manual', signal: clock.signal }
    if (body !== undefined) {
      request.body = body as BodyInit
      // Node's fetch sends any non-text body only half-duplex, and refuses a stream without saying so.
      if (typeof body !== 'string' && !(body instanceof URLSearchParams)) request.duplex = 'half'
    }
    const response = await fetchFn(url, request)
    clock.touch()
    return new Answer(response, clock, options.fail)
  } catch (err) {
    clock.done()
    throw options.fail(err, clock)
  }
}

/** Aborts a request after `timeoutMs` without progress, or when the outside signal aborts. */
class Clock implements ExchangeState {
  private readonly controller = new AbortController()
  private timer: NodeJS.Timeout | undefined
  timedOut = false
  private readonly onOutside = (): void => this.controller.abort(this.outside?.reason)

  constructor(
    timeoutMs: number,
    private readonly outside: AbortSignal | undefined,
  ) {
    if (outside?.aborted) this.controller.abort(outside.reason)
    else outside?.addEventListener('abort', this.onOutside, { once: true })
    this.timer = setTimeout(() => {
      this.timedOut = true
      this.controller.abort(new Error('timed out'))
    }, timeoutMs)
  }

  get signal(): AbortSignal {
    return this.controller.signal
  }

  get canceled(): boolean {
    return this.outside?.aborted === true
  }

  touch(): void {
    this.timer?.refresh()
  }

  done(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.outside?.removeEventListener('abort', this.onOutside)
  }
}

class Answer implements Exchange {
  constructor(
    readonly response: Response,
    private readonly clock: Clock,
    private readonly fail: Failure,
  ) {}

  get timedOut(): boolean {
    return this.clock.timedOut
  }

  get canceled(): boolean {
    return this.clock.canceled
  }

  touch(): void {
    this.clock.touch()
  }

  done(): void {
    this.clock.done()
  }

  async *pieces(fail: Failure = this.fail): AsyncGenerator<Uint8Array> {
    const body = this.response.body
    if (body === null) {
      this.done()
      return
    }
    const reader = body.getReader()
    let finished = false
    try {
      for (;;) {
        let step: ReadableStreamReadResult<Uint8Array>
        try {
          step = await reader.read()
        } catch (err) {
          this.done()
          throw fail(err, this)
        }
        if (step.done) break
        this.touch()
        yield step.value
      }
      finished = true
    } finally {
      this.done()
      // Left early (the reader stopped, or the body broke): release the connection.
      if (!finished) await reader.cancel().catch(() => undefined)
    }
  }

  async text(limit = Infinity, fail?: Failure): Promise<string | undefined> {
    const parts: Uint8Array[] = []
    let total = 0
    for await (const piece of this.pieces(fail)) {
      total += piece.byteLength
      if (total > limit) return undefined
      parts.push(piece)
    }
    return Buffer.concat(parts, total).toString('utf8')
  }

  async discard(): Promise<void> {
    this.done()
    try {
      await this.response.body?.cancel()
    } catch {
      // Nothing to release.
    }
  }
}
