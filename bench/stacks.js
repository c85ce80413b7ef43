/**
 * The servers under test: how to start each one as its own process on
 * loopback, seed it, and stop it. Every child is started with bench/guard.js
 * preloaded, so it stops by itself if the harness dies.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { ADMIN, SEED_PASSWORD, USERS } from './peers/fixture.js'

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url))
export const ROOT = path.resolve(BENCH_DIR, '..')
export const SERVER_ENTRY = path.join(ROOT, 'dist', 'examples', 'server.js')
const GUARD = pathToFileURL(path.join(BENCH_DIR, 'guard.js')).href
const START_TIMEOUT_MS = 30_000

/** The stacks, in table order. `ours` marks cloudsync-kit's real server. */
export const STACKS = [
  { id: 'bare', label: 'node:http (bare)', script: path.join(BENCH_DIR, 'peers', 'bare.js') },
  { id: 'express', label: 'Express 5 + express-basic-auth + method-override', script: path.join(BENCH_DIR, 'peers', 'express.js') },
  { id: 'connect', label: 'connect + basic-auth + method-override', script: path.join(BENCH_DIR, 'peers', 'connect.js') },
  { id: 'fastify', label: 'Fastify 5 (onRequest Basic check)', script: path.join(BENCH_DIR, 'peers', 'fastify.js') },
  { id: 'cloudsync', label: 'cloudsync-kit (examples/server, SQLite)', script: SERVER_ENTRY, ours: true },
  { id: 'cloudsync-nocache', label: 'cloudsync-kit, Basic cache off (scrypt per request)', script: SERVER_ENTRY, ours: true, env: { CLOUDSYNC_BASIC_CACHE: 'off' } }
]

/**
 * Start one stack; resolves `{ stack, child, pid, base, stop() }` once it
 * listens (and, for ours, once it is initialized and seeded).
 * `nodeArgs` go before the script (e.g. `--cpu-prof`).
 */
export async function startStack(stack, { nodeArgs = [], lifetimeMs } = {}) {
  const dataDir = stack.ours ? mkdtempSync(path.join(tmpdir(), 'cloudsync-bench-')) : undefined
  const env = { ...process.env, PORT: '0', HOST: '127.0.0.1', ...stack.env }
  if (dataDir !== undefined) env.CLOUDSYNC_DATA = dataDir
  if (lifetimeMs !== undefined) env.BENCH_LIFETIME_MS = String(lifetimeMs)
  const child = spawn(process.execPath, ['--import', GUARD, ...nodeArgs, stack.script], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc']
  })
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)))
  let output = ''
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${stack.id} did not start within ${START_TIMEOUT_MS} ms: ${output}`))
    }, START_TIMEOUT_MS)
    const onData = (chunk) => {
      output += chunk
      const m = /listening on (http:\/\/\S+)/.exec(output)
      if (m !== null) {
        clearTimeout(timer)
        resolve(m[1].replace(/\/$/, ''))
      }
    }
    child.stdout.setEncoding('utf8').on('data', onData)
    child.stderr.setEncoding('utf8').on('data', (chunk) => { output += chunk })
    child.once('exit', () => {
      clearTimeout(timer)
      reject(new Error(`${stack.id} exited during start-up: ${output}`))
    })
  })
  let stopping
  const running = {
    stack,
    child,
    pid: child.pid,
    base,
    output: () => output,
    /** SIGTERM, then SIGKILL after 10 s; removes the data directory. */
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM')
          const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
          await exited
          clearTimeout(timer)
        }
        if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true })
      })()
      return stopping
    }
  }
  try {
    if (stack.ours) await seed(base)
  } catch (err) {
    await running.stop()
    throw err
  }
  return running
}

/** Initialize cloudsync-kit with the fixture's admin and create users 2–10. */
async function seed(base) {
  const init = await request(base, 'POST', '/api/rest/service', {
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ serviceInit: { initialAdminUsername: ADMIN.name, initialAdminPassword: ADMIN.password } })
  })
  if (init.status !== 200) throw new Error(`initialization failed: ${init.status} ${init.text}`)
  for (const user of USERS.slice(1)) {
    const r = await request(base, 'POST', '/api/rest/users', {
      headers: { 'Content-Type': 'application/json', Authorization: basicHeader(ADMIN.name, ADMIN.password) },
      body: JSON.stringify({ user: { name: user.name, password: SEED_PASSWORD, admin: user.admin, enabled: user.enabled } })
    })
    if (r.status !== 201 || !String(r.headers.location).endsWith(`/users/${user.id}`)) {
      throw new Error(`seeding user ${user.name} failed: ${r.status} ${r.text}`)
    }
  }
}

/** Log in through the form; resolves the `Cookie` header value of the session. */
export async function login(base) {
  const r = await request(base, 'POST', '/login', {
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: ADMIN.name, password: ADMIN.password }).toString()
  })
  const line = [r.headers['set-cookie'] ?? []].flat()[0]
  if (r.status !== 303 || line === undefined) throw new Error(`login failed: ${r.status} ${r.text}`)
  return line.slice(0, line.indexOf(';'))
}

export function basicHeader(name, password) {
  return 'Basic ' + Buffer.from(`${name}:${password}`).toString('base64')
}

/** One request over a fresh connection; resolves `{ status, headers, text }`. */
export function request(base, method, pathname, { headers = {}, body, timeoutMs = 15_000 } = {}) {
  const url = new URL(pathname, base)
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname,
      port: url.port,
      method,
      path: url.pathname + url.search,
      headers: body === undefined ? headers : { ...headers, 'Content-Length': Buffer.byteLength(body) },
      agent: false
    }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout: ${method} ${pathname}`)))
    req.on('error', reject)
    req.end(body)
  })
}
