/**
 * Shared pieces of the reliability suite: where figures go, process
 * measurements from /proc, raw sockets, logins.
 *
 * Every test of the suite records its figures with {@link recordResult}; the
 * report script (`node scripts/reliability-report.mjs`) turns the files into
 * RELIABILITY.md. The folder is `$CLOUDSYNC_RELIABILITY_RESULTS`, default
 * `<os tmpdir>/cloudsync-reliability`.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type tap from 'tap'
import { exchange, request } from '../helpers/http.js'
import type { Reply, RequestOptions } from '../helpers/http.js'

/** A tap test object (the parameter of a `t.test` callback). */
export type Tap = Parameters<Parameters<typeof tap.test>[0]>[0]

export const RESULTS_DIR = process.env.CLOUDSYNC_RELIABILITY_RESULTS ?? path.join(os.tmpdir(), 'cloudsync-reliability')

export type Figure = string | number | boolean

export interface ResultFile {
  /** File stem and section order key, e.g. `fuzz`. */
  name: string
  /** Section heading in the report. */
  title: string
  /** Whether every assertion of the test passed. */
  passing: boolean
  finishedAt: string
  durationMs: number
  host: { node: string; cpus: number; platform: string }
  /** Named figures, in the order they should be shown. */
  figures: Array<[string, Figure]>
  /** Sentences explaining what the figures mean (criteria, tolerances). */
  notes: string[]
}

/**
 * Write one test's figures to `<RESULTS_DIR>/<name>.json`.
 *
 * @example
 * recordResult('fuzz', 'Fuzzing', t.passing(), started, [['requests', 5000]], ['no 5xx'])
 */
export function recordResult(name: string, title: string, passing: boolean, startedAt: number, figures: Array<[string, Figure]>, notes: string[] = []): void {
  const file: ResultFile = {
    name,
    title,
    passing,
    finishedAt: new Date().toISOString(),
    durationMs: Date.now() - startedAt,
    host: { node: process.version, cpus: os.cpus().length, platform: `${os.platform()} ${os.release()}` },
    figures,
    notes
  }
  mkdirSync(RESULTS_DIR, { recursive: true })
  writeFileSync(path.join(RESULTS_DIR, `${name}.json`), JSON.stringify(file, null, 2) + '\n')
}

/** Resident set size (kB) and open file descriptors of a live process (Linux /proc). */
export interface ProcSample { atMs: number; rssKb: number; fds: number }

export function procSample(pid: number, startedAt = 0): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)
  return { atMs: Date.now() - startedAt, rssKb: m === null ? 0 : Number(m[1]), fds: readdirSync(`/proc/${pid}/fd`).length }
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

/** A loopback port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

export interface RawReply {
  /** Everything the server sent before closing (or before the wait ended). */
  data: string
  /** Whether the server closed the connection within the wait. */
  closed: boolean
  /** Milliseconds from connect to close (or to the end of the wait). */
  elapsedMs: number
}

/**
 * Send raw bytes on a fresh connection and collect the answer until the
 * server closes it or `waitMs` passes (then the client closes). With
 * `halfClose`, the client ends its side after the bytes (the server then
 * knows nothing more is coming).
 */
export function rawExchange(port: number, bytes: string | Buffer, waitMs: number, halfClose = false): Promise<RawReply> {
  return new Promise((resolve) => {
    const started = Date.now()
    const socket = net.connect(port, '127.0.0.1')
    let data = ''
    let done = false
    const finish = (closed: boolean): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ data, closed, elapsedMs: Date.now() - started })
    }
    const timer = setTimeout(() => finish(false), waitMs)
    socket.on('connect', () => {
      if (bytes.length > 0) socket.write(bytes)
      if (halfClose) socket.end()
    })
    socket.on('data', (chunk: Buffer) => { data += chunk.toString('latin1') })
    socket.on('error', () => finish(true))
    socket.on('close', () => finish(true))
  })
}

/** The status code of the first HTTP response in raw server output, or 0. */
export function rawStatus(data: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(data)
  return m === null ? 0 : Number(m[1])
}

/** Log in through the form; resolves with `name=value` of the session cookie. */
export async function formLogin(base: string, name: string, password: string, headers: Record<string, string> = {}): Promise<string> {
  const r = await request(base, 'POST', '/login', {
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ username: name, password }).toString()
  })
  if (r.status !== 303) throw new Error(`login of ${name} failed: ${r.status}`)
  return sessionCookie(r)
}

/** The `name=value` pair of the first Set-Cookie of a reply. */
export function sessionCookie(r: Reply): string {
  const line = r.headers['set-cookie']?.[0]
  if (line === undefined) throw new Error(`no Set-Cookie in the reply (status ${r.status})`)
  return line.split(';')[0]!
}

/** JSON body options. */
export function json(value: unknown, headers: Record<string, string> = {}): RequestOptions {
  return { headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...headers }, body: JSON.stringify(value) }
}

/** Poll `probe` every `everyMs` until it returns a value other than undefined, or throw after `timeoutMs`. */
export async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

/**
 * Like the shared `request` helper, but the path is sent exactly as given
 * (no URL normalization of `..`, `%2e`, backslashes) and `Host` may be set.
 */
export interface VerbatimOptions extends RequestOptions {
  /** Send the body chunked (no Content-Length is added). */
  chunked?: boolean
}

export function requestVerbatim(port: number, method: string, rawPath: string, options: VerbatimOptions = {}): Promise<Reply> {
  const headers: Record<string, string | string[]> = { ...options.headers }
  const hasLength = Object.keys(headers).some((k) => k.toLowerCase() === 'content-length')
  if (options.body !== undefined && options.chunked !== true && !hasLength) headers['Content-Length'] = String(Buffer.byteLength(options.body))
  const target = { host: '127.0.0.1', port, method, path: rawPath, headers, agent: false, setHost: headers.Host === undefined }
  return exchange(target, options.timeoutMs, (req) => {
    if (options.body !== undefined && options.chunked === true) {
      // Two writes: Node then frames the body as chunks.
      const body = Buffer.from(options.body)
      req.write(body.subarray(0, body.length >> 1))
      req.end(body.subarray(body.length >> 1))
    } else {
      req.end(options.body)
    }
  })
}
