/**
 * The complete CloudSync server (`npm start`): API, login page, client
 * library and task engine on the embedded SQLite store.
 *
 * Environment:
 *   PORT                      listening port (default 8080)
 *   HOST                      listening address (default 127.0.0.1)
 *   CLOUDSYNC_DATA            data directory (default ./data)
 *   CLOUDSYNC_STORE_ROOTS     ':'-separated absolute directories for filesystem stores (default <data>/stores)
 *   CLOUDSYNC_OUTBOUND_HOSTS  ','-separated host names the DuraCloud look-ups and remote stores may contact (default: any)
 *   CLOUDSYNC_PUBLIC_URL      public base URL when behind a proxy (optional)
 *   CLOUDSYNC_TRUST_PROXY     "true" to honour X-Forwarded-Proto/Host (optional)
 *   CLOUDSYNC_BASIC_CACHE     "off" to check HTTP Basic passwords on every request (no verification cache; for benchmarks)
 *   CLOUDSYNC_HEADERS_TIMEOUT_MS  time a client has to send the request headers (default 20000)
 *   CLOUDSYNC_REQUEST_TIMEOUT_MS  time a client has to send the whole request, body included (default 60000)
 */
import http from 'node:http'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { cloudsync } from '../src/index.js'
import type { CloudSyncOptions, CloudSyncHandler } from '../src/index.js'

function listFromEnv(value: string | undefined, separator: string): string[] | undefined {
  if (value === undefined || value.trim() === '') return undefined
  return value.split(separator).map((s) => s.trim()).filter((s) => s !== '')
}

export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): CloudSyncOptions {
  const options: CloudSyncOptions = { dataDir: path.resolve(env.CLOUDSYNC_DATA ?? 'data') }
  const roots = listFromEnv(env.CLOUDSYNC_STORE_ROOTS, ':')
  if (roots !== undefined) options.storeRoots = roots
  const hosts = listFromEnv(env.CLOUDSYNC_OUTBOUND_HOSTS, ',')
  if (hosts !== undefined) options.outboundHosts = hosts
  if (env.CLOUDSYNC_PUBLIC_URL) options.publicUrl = env.CLOUDSYNC_PUBLIC_URL
  if (env.CLOUDSYNC_TRUST_PROXY === 'true') options.trustProxy = true
  if (env.CLOUDSYNC_BASIC_CACHE === 'off') options.basicAuthCache = false
  return options
}

/** Limits for slow or stalled clients; a client that misses one gets 408 and its connection is closed. */
export interface ServerTimeouts {
  /** Time to receive the request headers, in ms. Default 20 000. */
  headersTimeoutMs?: number
  /** Time to receive the whole request (headers and body), in ms. Default 60 000. */
  requestTimeoutMs?: number
  /** How long an idle keep-alive connection stays open, in ms. Default 5 000. */
  keepAliveTimeoutMs?: number
}

const DEFAULT_TIMEOUTS: Required<ServerTimeouts> = { headersTimeoutMs: 20_000, requestTimeoutMs: 60_000, keepAliveTimeoutMs: 5_000 }

function positiveMs(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value.trim() === '') return undefined
  const ms = Number(value)
  if (!Number.isSafeInteger(ms) || ms < 1) throw new TypeError(`${name} must be a positive number of milliseconds, not "${value}"`)
  return ms
}

/**
 * The slow-client limits from `CLOUDSYNC_HEADERS_TIMEOUT_MS` and
 * `CLOUDSYNC_REQUEST_TIMEOUT_MS` (unset = the defaults).
 *
 * @example
 * const running = await startServer(optionsFromEnv(), 8080, '127.0.0.1', timeoutsFromEnv())
 */
export function timeoutsFromEnv(env: NodeJS.ProcessEnv = process.env): ServerTimeouts {
  const timeouts: ServerTimeouts = {}
  const headers = positiveMs(env.CLOUDSYNC_HEADERS_TIMEOUT_MS, 'CLOUDSYNC_HEADERS_TIMEOUT_MS')
  const request = positiveMs(env.CLOUDSYNC_REQUEST_TIMEOUT_MS, 'CLOUDSYNC_REQUEST_TIMEOUT_MS')
  if (headers !== undefined) timeouts.headersTimeoutMs = headers
  if (request !== undefined) timeouts.requestTimeoutMs = request
  return timeouts
}

export interface RunningServer {
  server: http.Server
  url: string
  /** The CloudSync handler (its backend, readiness and close). */
  handler: CloudSyncHandler
  stop(): Promise<void>
}

/** Start the server; resolves once it listens. */
export async function startServer(options: CloudSyncOptions, port: number, host: string, timeouts: ServerTimeouts = {}): Promise<RunningServer> {
  const { headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs } = { ...DEFAULT_TIMEOUTS, ...timeouts }
  // The request timeout covers the headers too, so it cannot be the shorter one.
  const headersTimeout = Math.min(headersTimeoutMs, requestTimeoutMs)
  const handler = cloudsync(options)
  await handler.ready
  // Slow or stalled clients must not hold connections forever. Node checks the
  // limits on a timer (default every 30 s): check often enough that a limit
  // is enforced within about a quarter of its length.
  const server = http.createServer({
    headersTimeout,
    requestTimeout: requestTimeoutMs,
    connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(headersTimeout / 4)))
  }, (req, res) => handler(req, res))
  server.keepAliveTimeout = keepAliveTimeoutMs
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  const address = server.address() as { port: number }
  const shownHost = host.includes(':') ? `[${host}]` : host
  let stopping: Promise<void> | undefined
  return {
    server,
    handler,
    url: `http://${shownHost}:${address.port}/`,
    stop: () => {
      stopping ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()))
        server.closeIdleConnections()
        await handler.close()
        await closed
      })()
      return stopping
    }
  }
}

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 8080)
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`PORT must be a port number, not "${process.env.PORT}"`)
    process.exit(2)
  }
  const host = process.env.HOST ?? '127.0.0.1'
  const running = await startServer(optionsFromEnv(), port, host, timeoutsFromEnv())
  console.log(`CloudSync listening on ${running.url}`)
  const stop = (signal: string): void => {
    console.log(`${signal} received: finishing requests and stopping`)
    running.stop().then(() => process.exit(0), (err) => {
      console.error('error while stopping', err)
      process.exit(1)
    })
  }
  process.once('SIGTERM', () => stop('SIGTERM'))
  process.once('SIGINT', () => stop('SIGINT'))
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error('CloudSync failed to start:', err instanceof Error ? err.message : err)
    process.exit(1)
  })
}
