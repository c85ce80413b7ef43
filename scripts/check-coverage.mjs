// Fails when line coverage of the middleware pieces drops below the promised floor.
import { readFileSync } from 'node:fs'
import path from 'node:path'

const FLOOR = 90
const summary = JSON.parse(readFileSync('.tap/report/coverage-summary.json', 'utf8'))
let covered = 0
let total = 0
for (const [file, figures] of Object.entries(summary)) {
  if (!file.split(path.sep).join('/').includes('/src/middleware/')) continue
  covered += figures.lines.covered
  total += figures.lines.total
}
if (total === 0) {
  console.error('coverage: no src/middleware files in .tap/report/coverage-summary.json')
  process.exit(1)
}
const pct = (100 * covered) / total
// Quiet on success so the test runner's summary stays the last line of `npm test`.
if (pct < FLOOR) {
  console.error(`coverage: src/middleware lines ${pct.toFixed(2)}% (${covered}/${total}) is below the ${FLOOR}% floor`)
  process.exit(1)
}
