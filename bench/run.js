/**
 * `npm run bench`: cloudsync-kit side by side with bare node:http, Express 5,
 * connect and Fastify 5.
 *
 * Every server runs as its own process on 127.0.0.1 and is loaded by
 * autocannon from another process (bench/load.js). Each (stack, scenario)
 * is checked for the exact expected response first; then the stacks are
 * measured interleaved, over several rounds, and the medians are printed as
 * markdown and written to bench/RESULTS.md (full runs only).
 *
 * Environment (all optional):
 *   BENCH_ROUNDS=3  BENCH_WARMUP=2  BENCH_DURATION=9  BENCH_CONNECTIONS=32
 *   BENCH_STACKS=bare,cloudsync     only these stacks (ids as in stacks.js)
 *   BENCH_SCENARIOS=a,b             only these scenarios (ids as in scenarios.js)
 *   BENCH_WRITE=1|0                 force / skip writing RESULTS.md (default: full runs only)
 */
import { spawn } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { BENCH_DIR, ROOT, SERVER_ENTRY, STACKS, login, startStack } from './stacks.js'
import { SCENARIOS, appliesTo, check } from './scenarios.js'

const env = process.env
const config = {
  rounds: positive(env.BENCH_ROUNDS, 3, 20),
  warmup: positive(env.BENCH_WARMUP, 2, 60, true),
  duration: positive(env.BENCH_DURATION, 9, 120),
  connections: positive(env.BENCH_CONNECTIONS, 32, 1000),
  stacks: list(env.BENCH_STACKS),
  scenarios: list(env.BENCH_SCENARIOS)
}
const full = config.stacks === undefined && config.scenarios === undefined && config.rounds >= 3 && config.duration >= 9
const write = env.BENCH_WRITE === '1' || (env.BENCH_WRITE !== '0' && full)
const RESULTS = path.join(BENCH_DIR, 'RESULTS.md')
// The cache-off stack only makes sense for the Basic read it is compared on.
const SCENARIOS_OF = { 'cloudsync-nocache': ['a'] }

function positive(value, fallback, max, zeroOk = false) {
  if (value === undefined || value === '') return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < (zeroOk ? 0 : 1) || n > max) throw new Error(`expected an integer from ${zeroOk ? 0 : 1} to ${max}, got "${value}"`)
  return n
}

function list(value) {
  return value === undefined || value.trim() === '' ? undefined : value.split(',').map((s) => s.trim())
}

function median(values) {
  const sorted = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((x, y) => x - y)
  if (sorted.length === 0) return undefined
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function runs(stack, scenarioId) {
  return appliesTo(SCENARIOS.find((s) => s.id === scenarioId), stack) && (SCENARIOS_OF[stack.id]?.includes(scenarioId) ?? true)
}

/** Run bench/load.js in its own process; resolves its JSON line. */
function measure(server, scenario) {
  const url = server.base + scenario.path
  const spec = {
    url,
    method: scenario.method,
    headers: scenario.headers(server),
    ...(scenario.body === undefined ? {} : { body: scenario.body }),
    connections: config.connections,
    warmupSeconds: config.warmup,
    durationSeconds: config.duration,
    pid: server.pid,
    expectStatus: scenario.expect('').status
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(BENCH_DIR, 'load.js'), JSON.stringify(spec)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    const timer = setTimeout(() => child.kill('SIGKILL'), (config.warmup + config.duration + 90) * 1000)
    child.stdout.setEncoding('utf8').on('data', (c) => { out += c })
    child.stderr.setEncoding('utf8').on('data', (c) => { err += c })
    child.once('exit', (code) => {
      clearTimeout(timer)
      try {
        if (code !== 0) throw new Error(`exit ${code}`)
        resolve(JSON.parse(out.trim().split('\n').pop()))
      } catch (e) {
        reject(new Error(`load.js failed for ${server.stack.id}/${scenario.id} (${e.message}): ${err || out}`))
      }
    })
  })
}

function machine() {
  const cpus = os.cpus()
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: (os.totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`
  }
}

function versionOf(name) {
  try {
    return JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version
  } catch {
    return '?'
  }
}

const fmt = {
  int: (n) => (n === undefined ? '–' : Math.round(n).toLocaleString('en-US')),
  ms: (n) => (n === undefined ? '–' : String(Number(n.toFixed(1)))),
  us: (n) => (n === undefined ? '–' : n.toFixed(0)),
  ratio: (n) => (n === undefined ? '–' : `${n >= 0.1 || n === 0 ? n.toFixed(2) : n.toPrecision(2)}×`)
}

function summarize(samples, stackId, scenarioId) {
  const list = samples.filter((s) => s.stack === stackId && s.scenario === scenarioId).map((s) => s.result)
  if (list.length === 0) return undefined
  return {
    rps: median(list.map((r) => r.rps)),
    p99: median(list.map((r) => r.p99)),
    cpu: median(list.map((r) => r.cpuUsPerRequest)),
    perRound: list.map((r) => Math.round(r.rps)),
    unexpected: list.reduce((n, r) => n + r.unexpected + r.errors + r.timeouts, 0)
  }
}

function report(samples, stacks, scenarios, failures, meta) {
  const lines = []
  const bareOf = (scenario) => summarize(samples, 'bare', scenario.baseline ?? scenario.id)
  lines.push('| Scenario | Stack | req/s (median) | req/s per round | p99 ms | server CPU µs/req | × bare |')
  lines.push('|---|---|--:|--:|--:|--:|--:|')
  for (const scenario of scenarios) {
    const bare = bareOf(scenario)
    for (const stack of stacks) {
      if (stack.id === 'cloudsync-nocache' || !runs(stack, scenario.id)) continue
      const failure = failures.get(`${stack.id}/${scenario.id}`)
      if (failure !== undefined) {
        lines.push(`| ${scenario.id}. ${scenario.label} | ${stack.label} | check failed | | | | |`)
        continue
      }
      const s = summarize(samples, stack.id, scenario.id)
      if (s === undefined) continue
      const label = scenario.baseline !== undefined ? `${scenario.id}. ${scenario.label} (vs bare ${scenario.baseline})` : `${scenario.id}. ${scenario.label}`
      const warn = s.unexpected > 0 ? ` ⚠ ${s.unexpected} unexpected` : ''
      lines.push(`| ${label} | ${stack.label} | ${fmt.int(s.rps)}${warn} | ${s.perRound.join(' / ')} | ${fmt.ms(s.p99)} | ${fmt.us(s.cpu)} | ${fmt.ratio(bare === undefined ? undefined : s.rps / bare.rps)} |`)
    }
  }
  const throughput = lines.join('\n')

  const cacheLines = []
  const cached = summarize(samples, 'cloudsync', 'a')
  const uncached = summarize(samples, 'cloudsync-nocache', 'a')
  if (cached !== undefined && uncached !== undefined) {
    cacheLines.push('| a. GET users.json, Basic | req/s (median) | req/s per round | p99 ms | server CPU µs/req | × cached |')
    cacheLines.push('|---|--:|--:|--:|--:|--:|')
    for (const [label, s] of [['verification cache on (default)', cached], ['cache off: scrypt every request', uncached]]) {
      cacheLines.push(`| ${label} | ${fmt.int(s.rps)} | ${s.perRound.join(' / ')} | ${fmt.ms(s.p99)} | ${fmt.us(s.cpu)} | ${fmt.ratio(s.rps / cached.rps)} |`)
    }
  }

  const targets = []
  const ours = (id) => summarize(samples, 'cloudsync', id)
  const addTarget = (name, value, goal, met) => targets.push(`| ${name} | ${value} | ${goal} | ${met === undefined ? '–' : met ? 'yes' : '**no**'} |`)
  for (const [id, goal] of [['a', 0.5], ['b', 0.5], ['c', 0.35]]) {
    const scenario = SCENARIOS.find((s) => s.id === id)
    const o = ours(id)
    const bare = bareOf(scenario)
    if (o === undefined || bare === undefined) continue
    const ratio = o.rps / bare.rps
    addTarget(`${id}: cloudsync-kit / bare`, fmt.ratio(ratio), `≥ ${goal}×`, ratio >= goal)
  }
  for (const scenario of scenarios) {
    const o = ours(scenario.id)
    const express = summarize(samples, 'express', scenario.baseline ?? scenario.id)
    if (o === undefined || express === undefined) continue
    const ratio = o.rps / express.rps
    addTarget(`${scenario.id}: cloudsync-kit / Express`, fmt.ratio(ratio), '≥ 3×', ratio >= 3)
  }
  for (const scenario of scenarios) {
    const o = ours(scenario.id)
    const bare = bareOf(scenario)
    if (o === undefined || bare === undefined) continue
    // autocannon reports whole milliseconds: a 1 ms bare p99 allows 2 ms.
    const limit = 2 * Math.max(bare.p99, 1)
    addTarget(`${scenario.id}: p99 cloudsync-kit vs bare`, `${fmt.ms(o.p99)} ms vs ${fmt.ms(bare.p99)} ms`, `≤ ${fmt.ms(limit)} ms`, o.p99 <= limit)
  }

  const text = [
    '# Benchmark results',
    '',
    'Generated by `npm run bench` (bench/run.js); do not edit by hand. See bench/README.md for what is measured.',
    '',
    `- Date: ${meta.date}`,
    `- Node ${meta.machine.node} on ${meta.machine.os}`,
    `- Machine: ${meta.machine.cpu}, ${meta.machine.cores} cores, ${meta.machine.memoryGiB} GiB memory`,
    `- Load average (1 min) at start / end: ${meta.loadStart} / ${meta.loadEnd}`,
    `- Peers: express ${versionOf('express')}, express-basic-auth ${versionOf('express-basic-auth')}, method-override ${versionOf('method-override')}, connect ${versionOf('connect')}, basic-auth ${versionOf('basic-auth')}, fastify ${versionOf('fastify')}; load: autocannon ${versionOf('autocannon')}`,
    `- Method: ${config.rounds} interleaved rounds; per measurement ${config.warmup} s warm-up then ${config.duration} s measured, ${config.connections} connections, keep-alive, load generator in its own process. Medians over rounds.`,
    '',
    'The load generator shares the machine with the server, and numbers move with',
    'whatever else runs; compare ratios within one run rather than absolute numbers.',
    '',
    '## Throughput',
    '',
    throughput,
    '',
    '## HTTP Basic verification cache',
    '',
    cacheLines.length > 0 ? cacheLines.join('\n') : '_Not measured in this run._',
    '',
    '## Targets',
    '',
    '| Target | Measured | Goal | Met |',
    '|---|--:|--:|:-:|',
    ...targets,
    ''
  ]
  if (failures.size > 0) {
    text.push('## Failed checks (not measured)', '')
    for (const [key, message] of failures) text.push(`- ${key}: ${message}`)
    text.push('')
  }
  return text.join('\n')
}

async function main() {
  if (!existsSync(SERVER_ENTRY)) throw new Error(`${SERVER_ENTRY} is missing: run "npm run build" (npm run bench does it)`)
  const stacks = STACKS.filter((s) => config.stacks === undefined || config.stacks.includes(s.id))
  const scenarios = SCENARIOS.filter((s) => config.scenarios === undefined || config.scenarios.includes(s.id))
  if (stacks.length === 0 || scenarios.length === 0) throw new Error('no stack or no scenario selected')
  const date = new Date().toISOString()
  const loadStart = os.loadavg()[0].toFixed(2)
  const perMeasurement = config.warmup + config.duration + 1
  const jobsPerRound = scenarios.reduce((n, sc) => n + stacks.filter((st) => runs(st, sc.id)).length, 0)
  // Generous but finite: the whole run gives up at twice its planned time.
  const budgetMs = (config.rounds * jobsPerRound * perMeasurement * 2 + 300) * 1000
  const deadline = Date.now() + budgetMs
  console.error(`bench: ${stacks.length} stacks, ${scenarios.length} scenarios, ${config.rounds} rounds ≈ ${Math.ceil((config.rounds * jobsPerRound * perMeasurement) / 60)} min (load average ${loadStart})`)

  const servers = new Map()
  const stopAll = () => Promise.all([...servers.values()].map((s) => s.stop()))
  const onSignal = () => {
    stopAll().finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const samples = []
  const failures = new Map()
  try {
    for (const stack of stacks) {
      const server = await startStack(stack, { lifetimeMs: budgetMs + 60_000 })
      servers.set(stack.id, server)
      if (stack.ours) server.cookie = await login(server.base)
      console.error(`bench: ${stack.id} listening on ${server.base} (pid ${server.pid})`)
    }
    for (const scenario of scenarios) {
      for (const stack of stacks) {
        if (!runs(stack, scenario.id)) continue
        const problem = await check(servers.get(stack.id), scenario)
        if (problem !== undefined) {
          failures.set(`${stack.id}/${scenario.id}`, problem)
          console.error(`bench: CHECK FAILED ${stack.id}/${scenario.id}: ${problem}`)
        }
      }
    }
    for (let round = 0; round < config.rounds; round++) {
      // Rotate the order each round so no stack always runs first (or last).
      const order = stacks.map((_, i) => stacks[(i + round) % stacks.length])
      for (const scenario of scenarios) {
        for (const stack of order) {
          if (!runs(stack, scenario.id) || failures.has(`${stack.id}/${scenario.id}`)) continue
          if (Date.now() > deadline) throw new Error('time budget exceeded; stopping')
          const result = await measure(servers.get(stack.id), scenario)
          samples.push({ round, stack: stack.id, scenario: scenario.id, result })
          console.error(`bench: round ${round + 1}/${config.rounds} ${scenario.id} ${stack.id.padEnd(17)} ${Math.round(result.rps).toString().padStart(6)} req/s  p99 ${result.p99} ms  cpu ${result.cpuUsPerRequest?.toFixed(0)} µs/req (user ${result.userUsPerRequest?.toFixed(0)}, sys ${result.systemUsPerRequest?.toFixed(0)}; loader ${result.loaderUsPerRequest?.toFixed(0)})${result.unexpected ? `  ⚠ ${result.unexpected} unexpected` : ''}`)
        }
      }
    }
  } finally {
    await stopAll()
  }
  const text = report(samples, stacks, scenarios, failures, { date, machine: machine(), loadStart, loadEnd: os.loadavg()[0].toFixed(2) })
  console.log(text)
  if (write) {
    writeFileSync(RESULTS, text)
    console.error(`bench: wrote ${path.relative(ROOT, RESULTS)}`)
  } else {
    console.error('bench: partial run, bench/RESULTS.md left unchanged (BENCH_WRITE=1 to write it anyway)')
  }
  if (failures.size > 0) process.exitCode = 1
}

main().catch((err) => {
  console.error('bench:', err instanceof Error ? err.message : err)
  process.exit(1)
})
