/**
 * Task runs through the HTTP API of a real server, the way a client sees
 * them: create stores, sets and tasks with POST, wait for a run to finish,
 * read its task log and content, and check the §5.5 line forms.
 */
import type { Test } from 'tap'
import { readdir } from 'node:fs/promises'
import path from 'node:path'
import { jsonBody } from './server.js'
import type { TestServer } from './server.js'
import { TS, STARTED, PAUSED, RESUMED, finished, until } from './task-log.js'

export type Json = any

export const ISO_MS = new RegExp(`^${TS}$`)
export const OUTCOMES = ['OK (new in destination)', 'REPLACED (exists in destination)', 'SKIPPED (exists in destination)', 'SKIPPED (has managed datastream(s))', 'SKIPPED (does not exist in source)']

export async function make(s: TestServer, collection: string, root: string, fields: object): Promise<Json> {
  const r = await s.admin('POST', `/api/rest/${collection}`, jsonBody({ [root]: fields }))
  if (r.status !== 201) throw new Error(`POST ${collection}: ${r.status} ${r.text}`)
  return r.json()[root]
}

export const pathOf = (uri: string) => new URL(uri).pathname

/** A filesystem store under the server's store root; its directory and URI. */
export async function fsStore(s: TestServer, name: string): Promise<{ dir: string; uri: string }> {
  const dir = path.join(s.storeRoot, name.replace(/\W+/g, '-'))
  const store = await make(s, 'objectStores', 'objectStore', { name, type: 'filesystem', data: JSON.stringify({ path: dir }) })
  return { dir, uri: store.uri }
}

export async function objectSet(s: TestServer, type: string, data: string): Promise<string> {
  return (await make(s, 'objectSets', 'objectSet', { name: `set ${type} ${Math.random()}`, type, data })).uri
}

export interface CopyOptions {
  set: string
  query: string
  source: string
  dest: string
  overwrite?: boolean | string
  includeManaged?: boolean | string
  copyExternal?: boolean | string
  copyRedirect?: boolean | string
}

export function copyData(o: CopyOptions): string {
  return JSON.stringify({
    setUri: o.set,
    queryStoreUri: o.query,
    sourceStoreUri: o.source,
    destStoreUri: o.dest,
    overwrite: String(o.overwrite ?? false),
    includeManaged: String(o.includeManaged ?? true),
    copyExternal: String(o.copyExternal ?? false),
    copyRedirect: String(o.copyRedirect ?? false),
  })
}

let taskNames = 0
export async function task(s: TestServer, type: 'list' | 'copy', data: string, state: 'Idle' | 'Starting' = 'Starting'): Promise<Json> {
  return make(s, 'tasks', 'task', { name: `task ${++taskNames}`, type, state, data })
}

export async function getTask(s: TestServer, uri: string): Promise<Json> {
  const r = await s.admin('GET', pathOf(uri), { headers: { Accept: 'application/json' } })
  if (r.status !== 200) throw new Error(`GET task: ${r.status} ${r.text}`)
  return r.json().task
}

export async function patchTask(s: TestServer, uri: string, fields: object) {
  return s.admin('PATCH', pathOf(uri), jsonBody({ task: fields }))
}

export async function logsOf(s: TestServer, taskUri: string): Promise<Json[]> {
  const r = await s.admin('GET', '/api/rest/taskLogs', { headers: { Accept: 'application/json' } })
  return r.json().taskLogs.filter((l: Json) => l.taskUri === taskUri)
}

export async function content(s: TestServer, log: Json): Promise<string> {
  const r = await s.admin('GET', pathOf(log.contentUri), { headers: { Accept: 'text/plain' } })
  if (r.status !== 200) throw new Error(`GET content: ${r.status} ${r.text}`)
  return r.text
}

/** Wait until the task is Idle with a finished log; that log, its content and lines. */
export async function finishedRun(s: TestServer, taskUri: string): Promise<{ log: Json; text: string; lines: string[]; task: Json }> {
  return until(`the run of ${taskUri}`, async () => {
    const now = await getTask(s, taskUri)
    if (now.state !== 'Idle') return undefined
    const log = (await logsOf(s, taskUri)).find((l) => l.finishDate !== undefined)
    if (log === undefined) return undefined
    const text = await content(s, log)
    return { log, text, lines: text.split('\n').slice(0, -1), task: now }
  })
}

/** Start an idle task again and wait for its new run. */
export async function rerun(s: TestServer, taskUri: string) {
  const before = new Set((await logsOf(s, taskUri)).map((l) => l.uri))
  const r = await patchTask(s, taskUri, { state: 'Starting' })
  if (r.status !== 200) throw new Error(`PATCH Starting: ${r.status} ${r.text}`)
  return until(`the rerun of ${taskUri}`, async () => {
    const now = await getTask(s, taskUri)
    if (now.state !== 'Idle') return undefined
    const log = (await logsOf(s, taskUri)).find((l) => !before.has(l.uri) && l.finishDate !== undefined)
    if (log === undefined) return undefined
    const text = await content(s, log)
    return { log, text, lines: text.split('\n').slice(0, -1), task: now }
  })
}

/** Every line of a log is one of the §5.5 forms, first and last line included. */
export function checkFormat(t: Test, text: string, result: 'succeeded' | 'failed' | 'canceled', kind: 'list' | 'copy') {
  t.ok(text.endsWith('\n'), 'content ends with a line end')
  t.notOk(text.includes('\r'), 'LF line ends only')
  const lines = text.split('\n').slice(0, -1)
  t.match(lines[0], STARTED, 'first line: # Started at <ts>')
  t.match(lines.at(-1), finished(result), `last line: # Finished (${result}) at <ts>`)
  const odd = lines.slice(1, -1).filter((line) => {
    if (PAUSED.test(line) || RESUMED.test(line) || line.startsWith('ERROR: ')) return false
    if (kind === 'list') return !/^[^\s+/]+:[^\s+/]+$/.test(line)
    const m = /^Copying (\S+)\.\.(.*)$/.exec(line)
    return m === null || !(OUTCOMES.includes(m[2]!) || m[2]!.startsWith('ERROR: '))
  })
  t.same(odd, [], 'no line outside the §5.5 forms')
}

/** Object files (no `+` in the name) under a store directory, as PIDs. */
export async function objectPids(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && !entry.name.includes('+')) out.push(decodeURIComponent(entry.name))
  }
  return out.sort()
}


/** The `Copying …` lines of a log. */
export function copyLines(lines: string[]): string[] {
  return lines.filter((l) => l.startsWith('Copying '))
}
