/** Start a real CloudSync server on loopback with a fresh data directory, stopped at test end. */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { startServer } from '../../examples/server.js'
import type { CloudSyncOptions, Backend } from '../../src/index.js'
import { request } from './http.js'
import type { Reply, RequestOptions } from './http.js'

export const ADMIN: [string, string] = ['admin', 'admin-pass']

export interface TestServer {
  base: string
  api: string
  dataDir: string
  storeRoot: string
  backend: Backend
  /** Request as the initial admin (HTTP Basic) unless `basic` or an Authorization header is given. */
  as(basic: [string, string] | undefined, method: string, path: string, options?: RequestOptions): Promise<Reply>
  req(method: string, path: string, options?: RequestOptions): Promise<Reply>
  admin(method: string, path: string, options?: RequestOptions): Promise<Reply>
  stop(): Promise<void>
}

interface Teardown { teardown(fn: () => unknown): void }

export async function startTestServer(t: Teardown, options: CloudSyncOptions & { initialize?: boolean } = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'cloudsync-test-'))
  const storeRoot = path.join(dataDir, 'stores')
  const { initialize = true, ...rest } = options
  const running = await startServer({ taskManager: { intervalMs: 200 }, ...rest, dataDir }, 0, '127.0.0.1')
  const base = running.url.replace(/\/$/, '')
  const api = `${base}/api/rest`
  const req = (method: string, p: string, o?: RequestOptions) => request(base, method, p.startsWith('http') ? p : `${base}${p}`, o)
  const server: TestServer = {
    base, api, dataDir, storeRoot, backend: running.handler.backend,
    req,
    as: (basic, method, p, o = {}) => req(method, p, basic === undefined ? o : { ...o, basic }),
    admin: (method, p, o = {}) => req(method, p, { basic: ADMIN, ...o }),
    stop: () => running.stop()
  }
  t.teardown(async () => {
    await running.stop()
    if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true })
  })
  if (initialize) {
    const r = await req('POST', '/api/rest/service', {
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ serviceInit: { initialAdminUsername: ADMIN[0], initialAdminPassword: ADMIN[1] } })
    })
    if (r.status !== 200) throw new Error(`service init failed: ${r.status} ${r.text}`)
  }
  return server
}

/** JSON request options with a vendor or plain type. */
export function jsonBody(value: unknown, type = 'application/json', accept = 'application/json'): RequestOptions {
  return { headers: { 'Content-Type': type, Accept: accept }, body: JSON.stringify(value) }
}
