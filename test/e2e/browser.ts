/**
 * Shared pieces of the browser end-to-end tests: Debian's Chromium driven by
 * playwright-core, a real CloudSync server on 127.0.0.1 that records every
 * response status (to prove conditional polling), log-in through the real
 * login page, and screenshots for the documentation.
 */
import http from 'node:http'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { cloudsync } from '../../src/index.js'
import type { CloudSyncHandler, CloudSyncOptions } from '../../src/index.js'
import { TaskManager } from '../../src/backend/tasks/manager.js'
import { runList } from '../../src/backend/tasks/list-runner.js'
import type { RunBody } from '../../src/backend/tasks/runner.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
/**
 * Where screenshots go: the documentation's own folder only when asked
 * (`UPDATE_SCREENSHOTS=1`), so that a test run leaves the working tree clean;
 * otherwise a folder under the system temp directory (the shots are still taken).
 */
export const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === '1'
  ? path.join(ROOT, 'docs', 'screenshots')
  : path.join(tmpdir(), 'cloudsync-screenshots')
export const ADMIN: [string, string] = ['admin', 'admin-pass']
export const VIEWPORT = { width: 1200, height: 800 }

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']

interface Teardown { teardown(fn: () => unknown): void }

/** One Chromium per test file, closed at the end. */
export async function launchBrowser(t: Teardown): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS })
  t.teardown(() => browser.close())
  return browser
}

export interface TestPage {
  context: BrowserContext
  page: Page
  /** Uncaught page errors and console errors seen so far. */
  errors: string[]
}

/** A fresh context (own cookies) with one page; uncaught errors are collected for assertions. */
export async function openPage(browser: Browser, t: Teardown, options: { settings?: Record<string, number> } = {}): Promise<TestPage> {
  const context = await browser.newContext({ viewport: VIEWPORT, locale: 'en-GB', timezoneId: 'UTC' })
  t.teardown(() => context.close())
  context.setDefaultTimeout(15_000)
  if (options.settings !== undefined) {
    await context.addInitScript((settings) => {
      (window as unknown as { CloudSyncUISettings: unknown }).CloudSyncUISettings = settings
    }, options.settings)
  }
  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`))
  page.on('console', (msg) => {
    // A failed request is reported by the browser as a console error; the UI handles those itself.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) errors.push(`console: ${msg.text()}`)
  })
  return { context, page, errors }
}

export interface Hit { method: string; path: string; status: number; ifNoneMatch: boolean }

export interface UiServer {
  base: string
  api: string
  dataDir: string
  storeRoot: string
  handler: CloudSyncHandler
  /** Every finished request, in order. */
  hits: Hit[]
  stop(): Promise<void>
}

/**
 * A list task body that takes `ms` per object, so a run lasts long enough
 * to pause, resume and cancel it from the browser. It is the real list
 * runner with a pause before each checkpoint.
 */
export function pacedList(ms: number): RunBody {
  return (ctx) => runList({
    backend: ctx.backend,
    task: ctx.task,
    log: ctx.log,
    signal: ctx.signal,
    storeOptions: ctx.storeOptions,
    checkpoint: async () => {
      await new Promise((resolve) => setTimeout(resolve, ms))
      await ctx.checkpoint()
    }
  })
}

/**
 * Start CloudSync on 127.0.0.1 (port 0) with a temporary data directory.
 * `initialize` (default true) creates the admin/admin-pass administrator.
 * `pacedListMs` runs list tasks with {@link pacedList}, through a task
 * manager of our own (the toolkit's task manager API).
 */
export async function startUiServer(t: Teardown, options: CloudSyncOptions & { initialize?: boolean; pacedListMs?: number } = {}): Promise<UiServer> {
  const { initialize = true, pacedListMs, ...rest } = options
  const dataDir = mkdtempSync(path.join(tmpdir(), 'cloudsync-e2e-'))
  const storeRoot = path.join(dataDir, 'stores')
  mkdirSync(storeRoot, { recursive: true })
  const handler = cloudsync({ taskManager: pacedListMs === undefined ? { intervalMs: 200 } : false, log: () => {}, ...rest, dataDir })
  await handler.ready
  const manager = pacedListMs === undefined ? undefined : new TaskManager(handler.backend, { intervalMs: 100, runners: { list: pacedList(pacedListMs) }, log: () => {} })
  await manager?.start()
  if (initialize) await handler.backend.initialize({ name: ADMIN[0], password: ADMIN[1] })
  const hits: Hit[] = []
  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET'
    const url = req.url ?? '/'
    const ifNoneMatch = req.headers['if-none-match'] !== undefined
    res.on('finish', () => hits.push({ method, path: url, status: res.statusCode, ifNoneMatch }))
    handler(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeAllConnections()
      await manager?.shutdown()
      await handler.close()
      await closed
      rmSync(dataDir, { recursive: true, force: true })
    })()
    return stopping
  }
  t.teardown(stop)
  return { base, api: `${base}/api/rest`, dataDir, storeRoot, handler, hits, stop }
}

/** Log in through the real login page; resolves once the browser has followed the redirect. */
export async function logIn(page: Page, base: string, [name, password]: [string, string] = ADMIN, path = '/login'): Promise<void> {
  await page.goto(`${base}${path}`)
  await page.getByLabel('User name').fill(name)
  await page.getByLabel('Password', { exact: true }).fill(password)
  await Promise.all([page.waitForURL((url) => !url.pathname.endsWith('/login')), page.getByRole('button', { name: 'Log in' }).click()])
}

/** Log in and wait until the UI has loaded its data. */
export async function openUi(page: Page, base: string, credentials: [string, string] = ADMIN): Promise<void> {
  await logIn(page, base, credentials)
  await page.waitForSelector('body.ready')
  await page.waitForSelector('#tasks-idle:not(:has-text("Loading"))')
}

/**
 * Save a screenshot for the documentation (`<SCREENSHOTS>/<name>.png`):
 * the viewport (1200×800) from the top, without the transient notices.
 */
export async function screenshot(page: Page, name: string, options: { fullPage?: boolean } = {}): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true })
  await page.evaluate(() => {
    document.getElementById('cs-notices')?.replaceChildren()
    window.scrollTo(0, 0)
  })
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: options.fullPage === true, animations: 'disabled' })
}

/** Requests the server answered, filtered by path prefix (below the origin). */
export function hitsOf(server: UiServer, prefix: string): Hit[] {
  return server.hits.filter((hit) => hit.path.startsWith(prefix))
}

/**
 * Form controls and buttons on the page that a screen reader could not name:
 * visible inputs, selects and text areas without a label, and buttons or
 * links without text or `aria-label`. An empty list means all are named.
 */
export function unlabelled(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const visible = (el: Element): boolean => (el as HTMLElement).offsetParent !== null
    const problems: string[] = []
    document.querySelectorAll('input:not([type=hidden]), select, textarea').forEach((el) => {
      const control = el as HTMLInputElement
      if (visible(el) && (control.labels === null || control.labels.length === 0) && !control.getAttribute('aria-label')) problems.push(control.outerHTML)
    })
    document.querySelectorAll('button, a[href]').forEach((el) => {
      if (visible(el) && (el.textContent ?? '').trim() === '' && !el.getAttribute('aria-label')) problems.push(el.outerHTML)
    })
    return problems
  })
}
