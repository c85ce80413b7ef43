// Finish dist/public after the TypeScript builds:
//  1. wrap the UI bundle (dist/public/js/cloudsync-ui.js, written by `tsc -p tsconfig.ui.json`
//     as AMD module definitions) in a tiny loader, so it runs as a plain script that defines
//     no globals and needs no module loader on the page;
//  2. copy the static files of public/ (css, images) into dist/public, where the server serves them.
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const MARK = '/* cloudsync-ui */'

const HEAD = `${MARK}
(function () {
  'use strict';
  var definitions = {};
  var modules = {};
  function define(name, deps, factory) {
    definitions[name] = { deps: deps, factory: factory };
  }
  function load(name) {
    if (Object.prototype.hasOwnProperty.call(modules, name)) return modules[name];
    var definition = definitions[name];
    if (definition === undefined) throw new Error('CloudSync UI: missing module ' + name);
    var exports = modules[name] = {};
    definition.factory.apply(null, definition.deps.map(function (dep) {
      return dep === 'require' ? load : dep === 'exports' ? exports : load(dep);
    }));
    return exports;
  }
`
const TAIL = `
  load('app');
})();
`

const bundle = path.join(root, 'dist', 'public', 'js', 'cloudsync-ui.js')
if (!existsSync(bundle)) {
  console.error(`copy-public: ${path.relative(root, bundle)} is missing; run "tsc -p tsconfig.ui.json" first`)
  process.exit(1)
}
const code = readFileSync(bundle, 'utf8')
if (!code.startsWith(MARK)) writeFileSync(bundle, HEAD + code + TAIL)

for (const area of ['css', 'images']) {
  const from = path.join(root, 'public', area)
  if (!existsSync(from)) continue
  const to = path.join(root, 'dist', 'public', area)
  mkdirSync(to, { recursive: true })
  cpSync(from, to, { recursive: true })
}
