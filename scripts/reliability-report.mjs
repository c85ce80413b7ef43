#!/usr/bin/env node
/**
 * Assemble RELIABILITY.md from the figures the reliability suite recorded.
 *
 *     npx tap test/reliability/*.test.ts  # records figures (one JSON file per test)
 *     node scripts/reliability-report.mjs # writes RELIABILITY.md at the repository root
 *
 * The figures are read from `$CLOUDSYNC_RELIABILITY_RESULTS`, default
 * `<os tmpdir>/cloudsync-reliability` (where the tests write them). An
 * optional argument names the output file instead of RELIABILITY.md.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const RESULTS_DIR = process.env.CLOUDSYNC_RELIABILITY_RESULTS ?? path.join(os.tmpdir(), 'cloudsync-reliability')
const OUTPUT = path.resolve(process.argv[2] ?? path.join(ROOT, 'RELIABILITY.md'))

/** Sections in reading order; any other result file is appended after them. */
const ORDER = ['fuzz', 'load', 'crash', 'slow-clients', 'brute-force', 'sessions', 'headers', 'csrf']
const FILES = {
  fuzz: 'test/reliability/fuzz.test.ts',
  load: 'test/reliability/load.test.ts',
  crash: 'test/reliability/crash.test.ts',
  'slow-clients': 'test/reliability/slow-clients.test.ts',
  'brute-force': 'test/reliability/brute-force.test.ts',
  sessions: 'test/reliability/sessions.test.ts',
  headers: 'test/reliability/headers-csrf.test.ts',
  csrf: 'test/reliability/headers-csrf.test.ts'
}

function readResults() {
  if (!existsSync(RESULTS_DIR)) return []
  const results = []
  for (const name of readdirSync(RESULTS_DIR)) {
    if (!name.endsWith('.json')) continue
    try {
      results.push(JSON.parse(readFileSync(path.join(RESULTS_DIR, name), 'utf8')))
    } catch (err) {
      console.error(`skipping ${name}: ${err.message}`)
    }
  }
  const rank = (r) => (ORDER.includes(r.name) ? ORDER.indexOf(r.name) : ORDER.length)
  return results.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name))
}

/** Escape a value for a Markdown table cell. */
function cell(value) {
  return String(value).replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

function render(results) {
  const lines = []
  const passing = results.length > 0 && results.every((r) => r.passing)
  const missing = ORDER.filter((name) => !results.some((r) => r.name === name))
  const host = results[0]?.host
  const last = results.map((r) => r.finishedAt).sort().pop()
  lines.push('# Reliability')
  lines.push('')
  lines.push('What a CloudSync server built from this toolkit withstands, measured by the')
  lines.push('reliability suite in `test/reliability/`: hostile input, load, crashes, slow')
  lines.push('clients, password guessing, stale sessions, cross-site requests. Every figure')
  lines.push('below comes from the last run of that suite; regenerate this file with')
  lines.push('')
  lines.push('```sh')
  lines.push('npm run build')
  lines.push('npx tap test/reliability/*.test.ts')
  lines.push('node scripts/reliability-report.mjs')
  lines.push('```')
  lines.push('')
  lines.push('Knobs: `FC_SEED`, `FC_RUNS`, `FC_RAW_RUNS` (fuzzing seed and run counts), `CLOUDSYNC_LOAD_SECONDS`')
  lines.push('(load duration, default 60), `CLOUDSYNC_RELIABILITY_RESULTS` (where the figures are written and read).')
  lines.push('The server limits for slow clients are set with `CLOUDSYNC_HEADERS_TIMEOUT_MS` (default 20000) and')
  lines.push('`CLOUDSYNC_REQUEST_TIMEOUT_MS` (default 60000); the suite sets them short.')
  lines.push('')
  if (results.length === 0) {
    lines.push(`No results were found in \`${RESULTS_DIR}\`: run the suite first.`)
    return lines.join('\n') + '\n'
  }
  lines.push(`**Last run:** ${last} · Node ${host.node} · ${host.cpus} CPU cores · ${host.platform} · ` +
    `**${passing ? 'all checks passed' : 'SOME CHECKS FAILED'}**${missing.length > 0 ? ` · not run: ${missing.join(', ')}` : ''}`)
  lines.push('')
  lines.push('| Area | Result | Test file | Time |')
  lines.push('|---|---|---|---|')
  // A result much older than the newest one is from an earlier run (its test was skipped or not run since).
  const newest = Date.parse(last)
  const stale = (r) => newest - Date.parse(r.finishedAt) > 30 * 60_000
  for (const r of results) {
    lines.push(`| [${cell(r.title)}](#${anchor(r.title)}) | ${r.passing ? 'pass' : '**FAIL**'}${stale(r) ? ' (stale: from an earlier run)' : ''} | \`${FILES[r.name] ?? '?'}\` | ${(r.durationMs / 1000).toFixed(1)} s |`)
  }
  for (const r of results) {
    lines.push('')
    lines.push(`## ${r.title}`)
    lines.push('')
    lines.push(`${r.passing ? 'Passed' : '**Failed**'} · ${r.finishedAt} · \`${FILES[r.name] ?? r.name}\``)
    lines.push('')
    lines.push('| Figure | Value |')
    lines.push('|---|---|')
    for (const [name, value] of r.figures) lines.push(`| ${cell(name)} | ${cell(value)} |`)
    if (r.notes.length > 0) {
      lines.push('')
      for (const note of r.notes) lines.push(`- ${note}`)
    }
  }
  return lines.join('\n') + '\n'
}

function anchor(title) {
  return title.toLowerCase().replace(/[^a-z0-9 -]/g, '').trim().replace(/ /g, '-')
}

const results = readResults()
writeFileSync(OUTPUT, render(results))
console.log(`wrote ${path.relative(process.cwd(), OUTPUT) || OUTPUT} from ${results.length} result file(s) in ${RESULTS_DIR}`)
if (results.some((r) => !r.passing)) process.exitCode = 1
