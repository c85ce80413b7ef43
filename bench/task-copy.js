#!/usr/bin/env node
/**
 * Task engine benchmarks, through the real server (`dist/examples/server.js`
 * as a child process, driven over its HTTP API):
 *
 * 1. copy: a copy task of COPY_OBJECTS small objects (FOXML + managed content
 *    files) between two filesystem stores, timed from the POST that starts it
 *    until its log is finished, against `cp -r` of the same source tree.
 *    Target: within 2x of `cp -r`. The set is the pattern set "All Objects",
 *    which the server copies with its default number of worker threads (one
 *    per core, at most two); `cp -r` uses one. The server keeps its worker
 *    threads between copies, so the first run (which starts them) is the
 *    slowest; the median of three is that of a server that has copied before.
 * 2. list: the server's peak RSS (VmHWM, and sampled VmRSS) during a list
 *    task over LIST_OBJECTS objects. Target: under 150 MB.
 *
 * Prints the figures and, for a full run with the defaults, writes them to
 * bench/TASKS.md. Run `npm run build` first:
 *
 *   npm run build && node bench/task-copy.js
 *
 * Environment: COPY_OBJECTS (default 10000), LIST_OBJECTS (default 100000),
 * CP_RUNS (default 3), COPY_RUNS (default 3), BENCH_DIR (default: a new
 * directory under the system temp dir, removed at the end), BENCH_NODE_ARGS
 * (extra node flags for the server, e.g. `--cpu-prof --cpu-prof-dir=prof`).
 */
import { execFileSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const SERVER = path.join(ROOT, 'dist', 'examples', 'server.js')
const LAYOUT = path.join(ROOT, 'dist', 'src', 'backend', 'stores', 'filesystem-layout.js')
const OUT = path.join(ROOT, 'bench', 'TASKS.md')

const COPY_OBJECTS = intEnv('COPY_OBJECTS', 10_000)
const LIST_OBJECTS = intEnv('LIST_OBJECTS', 100_000)
const CP_RUNS = intEnv('CP_RUNS', 3)
const COPY_RUNS = intEnv('COPY_RUNS', 3)
const COPY_TARGET_RATIO = 2
const RSS_TARGET_MB = 150
const ADMIN = ['admin', 'bench-pass']

function intEnv(name, fallback) {
  const v = process.env[name]
  if (v === undefined || v === '') return fallback
  const n = Number(v)
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer`)
  return n
}

if (!existsSync(SERVER) || !existsSync(LAYOUT)) {
  console.error('dist/ is missing: run `npm run build` first.')
  process.exit(1)
}
const { objectDir, objectFileName, contentFileName } = await import(LAYOUT)

// ---- fixtures ----

function foxml(pid, index, versions) {
  let ds = `  <foxml:datastream ID="DC" STATE="A" CONTROL_GROUP="X" VERSIONABLE="true">
    <foxml:datastreamVersion ID="DC.0" LABEL="Dublin Core" CREATED="2011-11-01T10:00:00.000Z" MIMETYPE="text/xml" FORMAT_URI="http://www.openarchives.org/OAI/2.0/oai_dc/">
      <foxml:xmlContent>
        <oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" xmlns:dc="http://purl.org/dc/elements/1.1/">
          <dc:title>Object ${index}</dc:title>
          <dc:identifier>${pid}</dc:identifier>
        </oai_dc:dc>
      </foxml:xmlContent>
    </foxml:datastreamVersion>
  </foxml:datastream>
`
  if (versions.length > 0) {
    ds += '  <foxml:datastream ID="IMG" STATE="A" CONTROL_GROUP="M" VERSIONABLE="true">\n'
    versions.forEach((bytes, v) => {
      ds += `    <foxml:datastreamVersion ID="IMG.${v}" LABEL="Image" CREATED="2011-11-0${v + 1}T11:00:00.000Z" MIMETYPE="application/octet-stream" SIZE="${bytes.length}">
      <foxml:contentDigest TYPE="MD5" DIGEST="${createHash('md5').update(bytes).digest('hex')}"/>
      <foxml:contentLocation TYPE="INTERNAL_ID" REF="${pid}+IMG+IMG.${v}"/>
    </foxml:datastreamVersion>
`
    })
    ds += '  </foxml:datastream>\n'
  }
  return `<?xml version="1.0" encoding="UTF-8"?>
<foxml:digitalObject VERSION="1.1" PID="${pid}" xmlns:foxml="info:fedora/fedora-system:def/foxml#">
  <foxml:objectProperties>
    <foxml:property NAME="info:fedora/fedora-system:def/model#state" VALUE="Active"/>
    <foxml:property NAME="info:fedora/fedora-system:def/model#label" VALUE="Object ${index}"/>
  </foxml:objectProperties>
${ds}</foxml:digitalObject>
`
}

/** `count` objects; with `content`, each has two managed versions (1 KiB and 4 KiB). */
function writeStore(base, count, content) {
  const made = new Set()
  for (let i = 1; i <= count; i++) {
    const pid = `bench:${i}`
    const dir = objectDir(base, pid)
    if (!made.has(dir)) {
      mkdirSync(dir, { recursive: true })
      made.add(dir)
    }
    const versions = content ? [1024, 4096].map((n, v) => createHash('sha512').update(`${pid}/${v}`).digest().toString('base64').repeat(Math.ceil(n / 88)).slice(0, n)).map((s) => Buffer.from(s)) : []
    versions.forEach((bytes, v) => writeFileSync(path.join(dir, contentFileName(pid, 'IMG', `IMG.${v}`)), bytes))
    writeFileSync(path.join(dir, objectFileName(pid)), foxml(pid, i, versions))
  }
}

function countFiles(dir) {
  let n = 0
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n++
  return n
}

// ---- HTTP ----

function call(base, method, p, body, accept = 'application/json') {
  const url = new URL(p, base)
  const payload = body === undefined ? undefined : JSON.stringify(body)
  const headers = { Accept: accept, Authorization: 'Basic ' + Buffer.from(ADMIN.join(':')).toString('base64') }
  if (payload !== undefined) Object.assign(headers, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) })
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path: url.pathname + url.search, headers, agent: false }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        if (res.statusCode >= 400) reject(new Error(`${method} ${p}: ${res.statusCode} ${text}`))
        else resolve(text === '' ? undefined : res.headers['content-type']?.includes('json') ? JSON.parse(text) : text)
      })
    })
    req.on('error', reject)
    req.end(payload)
  })
}

async function startServer(dataDir) {
  const nodeArgs = process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ').filter(Boolean) : []
  const child = spawn(process.execPath, [...nodeArgs, SERVER], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', CLOUDSYNC_DATA: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  const base = await new Promise((resolve, reject) => {
    const onData = (c) => {
      out += c
      const m = /listening on (http:\/\/\S+)/.exec(out)
      if (m) resolve(m[1])
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', (c) => (out += c))
    child.once('exit', () => reject(new Error(`server exited: ${out}`)))
  })
  await call(base, 'POST', '/api/rest/service', { serviceInit: { initialAdminUsername: ADMIN[0], initialAdminPassword: ADMIN[1] } })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  return {
    child,
    base,
    output: () => out,
    stop: async () => {
      child.kill('SIGTERM')
      await exited
    },
  }
}

async function createStore(server, name, dir) {
  const r = await call(server.base, 'POST', '/api/rest/objectStores', { objectStore: { name, type: 'filesystem', data: JSON.stringify({ path: dir }) } })
  return r.objectStore.uri
}

const ALL_OBJECTS_SET = '/api/rest/objectSets/1' // created with the service

/** POST a task in Starting; resolves with the client-side time until its log is finished, and the log. */
async function runTask(server, name, type, data) {
  const t0 = process.hrtime.bigint()
  const task = (await call(server.base, 'POST', '/api/rest/tasks', { task: { name, type, state: 'Starting', data: JSON.stringify(data) } })).task
  const taskPath = new URL(task.uri).pathname
  for (;;) {
    await new Promise((r) => setTimeout(r, 25))
    const now = (await call(server.base, 'GET', taskPath)).task
    if (now.state !== 'Idle') continue
    const logs = (await call(server.base, 'GET', '/api/rest/taskLogs')).taskLogs.filter((l) => l.taskUri === task.uri)
    const log = logs.find((l) => l.finishDate !== undefined)
    if (log === undefined) continue
    const ms = Number(process.hrtime.bigint() - t0) / 1e6
    const content = await call(server.base, 'GET', new URL(log.contentUri).pathname, undefined, 'text/plain')
    return { ms, log, content }
  }
}

function median(values) {
  const s = [...values].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

function readStatus(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN)
    return { hwm: kb('VmHWM'), rss: kb('VmRSS') }
  } catch {
    return undefined
  }
}

// ---- the runs ----

const work = process.env.BENCH_DIR ? path.resolve(process.env.BENCH_DIR) : mkdtempSync(path.join(os.tmpdir(), 'cloudsync-bench-tasks-'))
const keep = process.env.BENCH_DIR !== undefined
mkdirSync(work, { recursive: true })
const log = (m) => console.log(`[bench] ${m}`)

/** Flush dirty pages so that one run's write-back does not slow the next. */
function settle() {
  execFileSync('sync')
}

async function benchCopy() {
  const dataDir = path.join(work, 'copy-data')
  const stores = path.join(dataDir, 'stores')
  const source = path.join(stores, 'source')
  rmSync(dataDir, { recursive: true, force: true })
  mkdirSync(stores, { recursive: true })
  log(`writing ${COPY_OBJECTS} objects (FOXML + 2 managed versions each)`)
  writeStore(source, COPY_OBJECTS, true)
  const files = countFiles(source)
  // Warm the page cache with the source tree (untimed).
  execFileSync('cp', ['-r', source, path.join(work, 'cp-warm')])

  const server = await startServer(dataDir)
  const cpTimes = []
  const taskTimes = []
  const serverTimes = []
  const runs = Math.max(CP_RUNS, COPY_RUNS)
  try {
    const src = await createStore(server, 'Bench source', source)
    // cp -r and the task alternate, each into a fresh directory (deleting a
    // big tree slows the file system for a while), so both see the same conditions.
    for (let i = 0; i < runs; i++) {
      if (i < CP_RUNS) {
        settle()
        const t0 = process.hrtime.bigint()
        execFileSync('cp', ['-r', source, path.join(work, `cp-${i}`)])
        cpTimes.push(Number(process.hrtime.bigint() - t0) / 1e6)
        log(`cp -r run ${i}: ${cpTimes.at(-1).toFixed(0)} ms`)
      }
      if (i < COPY_RUNS) {
        const destDir = path.join(stores, `dest-${i}`)
        const dest = await createStore(server, `Bench dest ${i}`, destDir)
        const data = { setUri: ALL_OBJECTS_SET, queryStoreUri: src, sourceStoreUri: src, destStoreUri: dest, overwrite: 'false', includeManaged: 'true', copyExternal: 'false', copyRedirect: 'false' }
        settle()
        const { ms, log: record, content } = await runTask(server, `Bench copy ${i}`, 'copy', data)
        const ok = content.split('\n').filter((l) => l.endsWith('..OK (new in destination)')).length
        if (record.resultType !== 'Succeeded' || ok !== COPY_OBJECTS) throw new Error(`copy run ${i}: ${record.resultType}, ${ok} objects copied:\n${content.slice(-2000)}`)
        const copied = countFiles(destDir)
        if (copied !== files) throw new Error(`copy run ${i}: ${copied} files in the destination, expected ${files}`)
        taskTimes.push(ms)
        serverTimes.push(Date.parse(record.finishDate) - Date.parse(record.startDate))
        log(`copy task run ${i}: ${ms.toFixed(0)} ms (log start→finish ${serverTimes.at(-1)} ms)`)
      }
    }
  } finally {
    await server.stop()
  }
  const cpMs = median(cpTimes)
  const taskMs = median(taskTimes)
  return { files, cpTimes, cpMs, taskTimes, taskMs, serverMs: median(serverTimes), ratio: taskMs / cpMs }
}

async function benchList() {
  const dataDir = path.join(work, 'list-data')
  const store = path.join(dataDir, 'stores', 'big')
  rmSync(dataDir, { recursive: true, force: true })
  mkdirSync(store, { recursive: true })
  log(`writing ${LIST_OBJECTS} objects (FOXML only)`)
  writeStore(store, LIST_OBJECTS, false)
  const server = await startServer(dataDir)
  const pid = server.child.pid
  const before = readStatus(pid)
  let peakSampled = before?.rss ?? 0
  const sampler = setInterval(() => {
    const s = readStatus(pid)
    if (s !== undefined && s.rss > peakSampled) peakSampled = s.rss
  }, 20)
  try {
    const storeUri = await createStore(server, 'Big store', store)
    const { ms, log: record, content } = await runTask(server, 'Bench list', 'list', { setUri: ALL_OBJECTS_SET, storeUri })
    const lines = content.split('\n').filter((l) => l.startsWith('bench:')).length
    if (record.resultType !== 'Succeeded' || lines !== LIST_OBJECTS) throw new Error(`list run: ${record.resultType}, ${lines} PIDs`)
    const after = readStatus(pid)
    log(`list task: ${ms.toFixed(0)} ms, VmHWM ${(after.hwm / 1024).toFixed(1)} MB`)
    return { ms, idleRssKb: before?.rss, hwmKb: after.hwm, sampledKb: peakSampled, logBytes: Buffer.byteLength(content) }
  } finally {
    clearInterval(sampler)
    await server.stop()
  }
}

function machine() {
  const cpus = os.cpus()
  return `${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.type()} ${os.release()}`
}

function report(copy, list) {
  const mb = (kb) => (kb / 1024).toFixed(1)
  const copyPass = copy.ratio <= COPY_TARGET_RATIO
  const rssPass = list.hwmKb / 1024 < RSS_TARGET_MB
  return `# Task engine benchmarks

Generated by \`node bench/task-copy.js\` (after \`npm run build\`); do not edit by hand.

* Date: ${new Date().toISOString()}
* Node: ${process.version}
* Machine: ${machine()}
* Load average (1 min) at the start and the end: ${loadAtStart.toFixed(2)} / ${os.loadavg()[0].toFixed(2)}
* Copy threads (the server's default, one per core, at most two): ${Math.min(2, os.availableParallelism())}

Both runs go through the real server (\`dist/examples/server.js\` as a child
process, default options) and its HTTP API: stores are created with
\`POST objectStores\`, the task is created with \`state: "Starting"\`, and the
clock stops when the task log has its \`finishDate\` (polled every 25 ms).

## Copy: ${COPY_OBJECTS.toLocaleString('en')} objects between two filesystem stores

Each object: a FOXML file with inline Dublin Core and one managed datastream
with two versions (1 KiB and 4 KiB content files) — ${copy.files.toLocaleString('en')} files in all.
\`cp -r\` copies the same source tree. The two alternate (median of ${copy.cpTimes.length} and
${copy.taskTimes.length} runs), each into a fresh directory after a \`sync\`, with the source in the
page cache (an untimed \`cp -r\` first).

| Measure | Result |
|---|---|
| \`cp -r\` | ${copy.cpMs.toFixed(0)} ms (runs: ${copy.cpTimes.map((m) => m.toFixed(0)).join(', ')}) |
| copy task, POST → log finished | ${copy.taskMs.toFixed(0)} ms (runs: ${copy.taskTimes.map((m) => m.toFixed(0)).join(', ')}) |
| copy task, log \`startDate\` → \`finishDate\` | ${copy.serverMs.toFixed(0)} ms |
| per object | task ${((copy.taskMs * 1000) / COPY_OBJECTS).toFixed(0)} µs, \`cp -r\` ${((copy.cpMs * 1000) / COPY_OBJECTS).toFixed(0)} µs |
| **ratio task / \`cp -r\`** | **${copy.ratio.toFixed(2)}×** (target ≤ ${COPY_TARGET_RATIO}×: **${copyPass ? 'pass' : 'miss'}**) |

## List: ${LIST_OBJECTS.toLocaleString('en')} objects, server memory

| Measure | Result |
|---|---|
| list task, POST → log finished | ${list.ms.toFixed(0)} ms |
| log content | ${(list.logBytes / 2 ** 20).toFixed(1)} MiB |
| server RSS before the task | ${list.idleRssKb === undefined ? 'n/a' : mb(list.idleRssKb) + ' MB'} |
| peak RSS sampled every 20 ms | ${mb(list.sampledKb)} MB |
| **peak RSS (VmHWM)** | **${mb(list.hwmKb)} MB** (target < ${RSS_TARGET_MB} MB: **${rssPass ? 'pass' : 'miss'}**) |

Creating files is most of the work on both sides of the copy comparison, so
the ratio moves with the file system and the machine's load: when file
creation is slow (a busy disk or machine) the task is close to \`cp -r\`, or
faster, as two threads share the work; on an idle machine, where \`cp -r\`
needs about 0.1 ms per object, the task's own work per object weighs more: a
temporary name and a rename per file (what keeps a killed copy from leaving
a partial object), and reading the FOXML with a markup check and
fast-xml-parser (about 45 µs for these objects). Its log lines reach the
main thread through shared memory, without a message per object. The first
copy after the server starts is slower than the others: it starts the worker
threads, which compile their code (several hundred milliseconds of processor
time); later copies reuse them.
`
}

const loadAtStart = os.loadavg()[0]
try {
  const copy = await benchCopy()
  const list = await benchList()
  const md = report(copy, list)
  console.log(md)
  // Only a full, unprofiled run on the default file system is the record.
  if (COPY_OBJECTS === 10_000 && LIST_OBJECTS === 100_000 && !process.env.BENCH_NODE_ARGS && !process.env.BENCH_DIR) {
    writeFileSync(OUT, md)
    log(`written to ${path.relative(process.cwd(), OUT)}`)
  } else {
    log('not a full run (COPY_OBJECTS, LIST_OBJECTS, BENCH_DIR or BENCH_NODE_ARGS set): TASKS.md left as it is')
  }
} finally {
  if (!keep) rmSync(work, { recursive: true, force: true })
}
