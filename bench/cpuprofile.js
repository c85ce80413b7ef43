/**
 * Summarise a V8 `.cpuprofile` (from `node --cpu-prof`) by self time:
 *
 *   node bench/cpuprofile.js <file.cpuprofile> [top=40]
 *
 * Prints the functions that spent the most time themselves (not in their
 * callees), the same grouped by file, and the total (inclusive) time of the
 * application's own functions, so hot spots stand out without a browser.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** `{ total, functions: [{ name, where, selfMs, share }], files: [{ file, selfMs, share }] }` */
export function summarizeProfile(profile, top = 40) {
  const byId = new Map()
  for (const node of profile.nodes) byId.set(node.id, node)
  // Each sample names the node that was on top of the stack; timeDeltas give its duration.
  const selfUs = new Map()
  const { samples, timeDeltas } = profile
  for (let i = 0; i < samples.length; i++) {
    const delta = timeDeltas[i + 1] ?? 0
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + delta)
  }
  const functions = new Map()
  const files = new Map()
  let total = 0
  for (const [id, us] of selfUs) {
    const frame = byId.get(id).callFrame
    const file = shortFile(frame.url)
    const name = frame.functionName || '(anonymous)'
    const key = `${name} ${file}:${frame.lineNumber + 1}`
    functions.set(key, (functions.get(key) ?? 0) + us)
    const fileKey = file === '' ? `(${name})` : file
    files.set(fileKey, (files.get(fileKey) ?? 0) + us)
    total += us
  }
  // Inclusive ("total") time: every function on the stack of a sample gets
  // its duration once, however deep it recurs.
  const parent = new Map()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const keyOf = (frame) => `${frame.functionName || '(anonymous)'} ${shortFile(frame.url)}:${frame.lineNumber + 1}`
  const inclusive = new Map()
  for (let i = 0; i < samples.length; i++) {
    const delta = timeDeltas[i + 1] ?? 0
    const seen = new Set()
    for (let id = samples[i]; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id).callFrame
      if (frame.url === '') continue // native frames: their callers show the time
      const key = keyOf(frame)
      if (seen.has(key)) continue
      seen.add(key)
      inclusive.set(key, (inclusive.get(key) ?? 0) + delta)
    }
  }
  const rank = (map, field) => [...map].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([k, us]) => ({ [field]: k, selfMs: us / 1000, share: total === 0 ? 0 : us / total }))
  const ours = new Map([...inclusive].filter(([key]) => !key.includes('node_modules/') && !key.includes(' node:')))
  return { totalMs: total / 1000, functions: rank(functions, 'function'), files: rank(files, 'file'), inclusive: rank(ours, 'function') }
}

function shortFile(url) {
  if (url === '') return ''
  const file = url.startsWith('file://') ? fileURLToPath(url) : url
  const nm = file.lastIndexOf('node_modules/')
  if (nm !== -1) return file.slice(nm)
  const cwd = process.cwd() + path.sep
  return file.startsWith(cwd) ? file.slice(cwd.length) : file
}

export function formatSummary(summary) {
  const pct = (s) => `${(s * 100).toFixed(1).padStart(5)} %`
  const lines = [`total sampled: ${summary.totalMs.toFixed(0)} ms`, '', 'self time by function:']
  for (const f of summary.functions) lines.push(`${pct(f.share)} ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.function}`)
  lines.push('', 'self time by file:')
  for (const f of summary.files) lines.push(`${pct(f.share)} ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.file}`)
  lines.push('', 'total (inclusive) time of application functions:')
  for (const f of summary.inclusive) lines.push(`${pct(f.share)} ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.function}`)
  return lines.join('\n')
}

if (process.argv[1] !== undefined && import.meta.url === `file://${path.resolve(process.argv[1])}`) {
  const file = process.argv[2]
  if (file === undefined) {
    console.error('usage: node bench/cpuprofile.js <file.cpuprofile> [top]')
    process.exit(2)
  }
  console.log(formatSummary(summarizeProfile(JSON.parse(readFileSync(file, 'utf8')), Number(process.argv[3] ?? 40))))
}
