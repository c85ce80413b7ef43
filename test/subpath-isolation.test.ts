/**
 * Importing one middleware subpath (`cloudsync-kit/method-override`, …)
 * must load no other piece and nothing of CloudSync: only the piece itself,
 * the shared `context` and `problem` modules, the piece's own helper modules
 * and npm dependencies.
 *
 * Each piece is imported in a fresh Node process whose module loads are
 * recorded by a `module.register()` hook. The TypeScript source is always
 * checked (through the same TypeScript loader tap uses); the built
 * `dist/src/middleware/*.js` is checked too when it is up to date.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

/** Every piece with a subpath export. Pieces not written yet are reported as skipped. */
const PIECES = [
  'method-override', 'format-suffix', 'negotiate', 'body', 'security-headers', 'problem',
  'session', 'authenticate', 'login', 'csrf', 'authorize', 'password'
]
/** Modules every piece may share. */
const SHARED = new Set(['context', 'problem'])

const work = mkdtempSync(path.join(tmpdir(), 'subpath-isolation-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))

// The hook runs on the loader thread; it appends every file URL that is loaded.
writeFileSync(path.join(work, 'hooks.mjs'), `
import { appendFileSync } from 'node:fs'
let log
export function initialize(data) { log = data.log }
export async function load(url, context, nextLoad) {
  if (url.startsWith('file:')) appendFileSync(log, url + '\\n')
  return nextLoad(url, context)
}
`)
writeFileSync(path.join(work, 'register.mjs'), `
import { register } from 'node:module'
register(new URL('./hooks.mjs', import.meta.url), { data: { log: process.env.ISOLATION_LOG } })
`)
writeFileSync(path.join(work, 'entry.mjs'), 'await import(process.env.ISOLATION_TARGET)\n')

/** The TypeScript loader tap started this test with (so the child can import .ts sources). */
function tsLoader(): string {
  for (const arg of process.execArgv) {
    const m = /^--import=(.*@tapjs[\\/]typescript.*)$/.exec(arg)
    if (m !== null) return m[1]!
  }
  return import.meta.resolve('@tapjs/typescript/import')
}

interface Loaded { code: number | null; files: string[]; stderr: string }

function loadIn(target: string, loaders: string[], id: string): Promise<Loaded> {
  const log = path.join(work, `${id}.log`)
  writeFileSync(log, '')
  // The child only imports; its coverage would be noise in the suite's report.
  const env: NodeJS.ProcessEnv = { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: '0', TS_NODE_TRANSPILE_ONLY: '1', ISOLATION_LOG: log, ISOLATION_TARGET: pathToFileURL(target).href }
  const child = spawn(process.execPath, [...loaders.flatMap((l) => ['--import', l]), '--import', pathToFileURL(path.join(work, 'register.mjs')).href, path.join(work, 'entry.mjs')], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'ignore', 'pipe']
  })
  let stderr = ''
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer)
      const files = readFileSync(log, 'utf8').split('\n').filter(Boolean).map((u) => fileURLToPath(u))
      resolve({ code, files, stderr })
    })
  })
}

/** Files of this project (outside node_modules) that importing `piece` must not load. */
function violations(piece: string, files: string[]): string[] {
  const bad: string[] = []
  for (const file of files) {
    const rel = path.relative(ROOT, file)
    if (rel.startsWith('..') || rel.split(path.sep).includes('node_modules')) continue
    const parts = rel.split(path.sep)
    const inSrc = parts[0] === 'src' ? parts.slice(1) : parts[0] === 'dist' && parts[1] === 'src' ? parts.slice(2) : undefined
    if (inSrc === undefined) {
      if (parts[0] !== 'test') bad.push(rel)
      continue
    }
    if (inSrc[0] !== 'middleware' || inSrc.length !== 2) {
      bad.push(rel) // resources, backend, client, index: CloudSync itself
      continue
    }
    const name = inSrc[1]!.replace(/\.(ts|js)$/, '')
    if (name === piece || SHARED.has(name)) continue
    if (PIECES.includes(name)) bad.push(rel) // another piece
    // anything else in middleware/ is a helper module, allowed
  }
  return bad
}

const existing = PIECES.filter((p) => existsSync(path.join(ROOT, 'src', 'middleware', `${p}.ts`)))
const missing = PIECES.filter((p) => !existing.includes(p))
if (missing.length > 0) t.comment(`not written yet, skipped: ${missing.join(', ')}`)

/** Run `fn` over `items` with at most `limit` at a time (the machine has two cores). */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await fn(items[next++]!)
  }))
}

t.test('each TypeScript piece loads only itself, context, problem and its helpers', async (t) => {
  const loader = tsLoader()
  const results = new Map<string, Loaded>()
  await pool(existing, 2, async (piece) => {
    results.set(piece, await loadIn(path.join(ROOT, 'src', 'middleware', `${piece}.ts`), [loader], `src-${piece}`))
  })
  for (const piece of existing) {
    const r = results.get(piece)!
    t.equal(r.code, 0, `${piece}: imports cleanly ${r.stderr.slice(0, 500)}`)
    t.ok(r.files.some((f) => f.endsWith(path.join('middleware', `${piece}.ts`))), `${piece}: the recorder saw the piece itself`)
    t.same(violations(piece, r.files), [], `${piece}: no other piece and nothing of CloudSync loaded`)
  }
})

const fresh = existing.filter((piece) => {
  const built = path.join(ROOT, 'dist', 'src', 'middleware', `${piece}.js`)
  return existsSync(built) && statSync(built).mtimeMs >= statSync(path.join(ROOT, 'src', 'middleware', `${piece}.ts`)).mtimeMs
})

t.test('each built piece in dist/ (when up to date) does the same', {
  skip: fresh.length === 0 ? 'no up-to-date build in dist/ (npm test builds it first)' : false
}, async (t) => {
  const results = new Map<string, Loaded>()
  await pool(fresh, 2, async (piece) => {
    results.set(piece, await loadIn(path.join(ROOT, 'dist', 'src', 'middleware', `${piece}.js`), [], `dist-${piece}`))
  })
  for (const piece of fresh) {
    const r = results.get(piece)!
    t.equal(r.code, 0, `${piece}: imports cleanly ${r.stderr.slice(0, 500)}`)
    t.ok(r.files.some((f) => f.endsWith(path.join('dist', 'src', 'middleware', `${piece}.js`))), `${piece}: the recorder saw the built piece`)
    t.same(violations(piece, r.files), [], `${piece}: no other piece and nothing of CloudSync loaded`)
  }
})

t.test('the check itself catches a piece that imports another', async (t) => {
  // A throwaway module inside src/middleware would disturb colleagues; a
  // module outside that imports two pieces must show both as loaded instead.
  const probe = path.join(work, 'probe.mjs')
  const url = (p: string) => pathToFileURL(path.join(ROOT, 'src', 'middleware', `${p}.ts`)).href
  writeFileSync(probe, `await import(${JSON.stringify(url('method-override'))}); await import(${JSON.stringify(url('format-suffix'))})\n`)
  const r = await loadIn(probe, [tsLoader()], 'probe')
  t.equal(r.code, 0, r.stderr.slice(0, 500))
  t.same(violations('method-override', r.files), [path.join('src', 'middleware', 'format-suffix.ts')])
})
