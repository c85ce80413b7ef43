/**
 * Static assets under `{mount}/js`, `/css`, `/images` (open, spec §1.1): the
 * client library and the browser UI's files, read once from the package's
 * `dist/public` directory and served with ETags.
 */
import { readFileSync, existsSync, readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { HttpError } from '../middleware/problem.js'
import { sendCacheable } from '../middleware/security-headers.js'

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.map': 'application/json'
}

/** The package root: the nearest directory above this module holding our package.json. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const candidate = path.join(dir, 'package.json')
    if (existsSync(candidate)) {
      try {
        if ((JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string }).name === 'cloudsync-kit') return dir
      } catch { /* keep looking */ }
    }
    const parent = path.dirname(dir)
    if (parent === dir) throw new Error('cloudsync: cannot find the cloudsync-kit package root')
    dir = parent
  }
}

interface Asset { body: Buffer; type: string }

function collect(dir: string, prefix: string, into: Map<string, Asset>): void {
  if (!existsSync(dir)) return
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name)
    const url = `${prefix}/${name}`
    if (statSync(full).isDirectory()) collect(full, url, into)
    else into.set(url, { body: readFileSync(full), type: TYPES[path.extname(name)] ?? 'application/octet-stream' })
  }
}

/** Load every asset once; the client library answers under both of its names. */
export function loadAssets(publicDir = path.join(packageRoot(), 'dist', 'public')): Map<string, Asset> {
  const assets = new Map<string, Asset>()
  for (const area of ['js', 'css', 'images']) collect(path.join(publicDir, area), `/${area}`, assets)
  const client = assets.get('/js/cloudsync-api.js')
  if (client !== undefined) assets.set('/js/cloudsync-client.js', client)
  return assets
}

export function isAssetPath(path: string): boolean {
  return path.startsWith('/js/') || path.startsWith('/css/') || path.startsWith('/images/')
}

export function serveAsset(assets: Map<string, Asset>, path: string, req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    throw new HttpError(405, 'Static files can only be read with GET or HEAD.', { code: 'method_not_allowed', headers: { Allow: 'GET, HEAD' } })
  }
  const asset = assets.get(path)
  if (asset === undefined) {
    if (path === '/js/cloudsync-api.js' || path === '/js/cloudsync-client.js') {
      throw new HttpError(503, 'The client library has not been built; run "npm run build".', { code: 'not_built' })
    }
    throw new HttpError(404, 'No such file.', { code: 'not_found' })
  }
  sendCacheable(req, res, asset.body, asset.type, 200)
}
