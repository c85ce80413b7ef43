/**
 * The UI's pure text helpers (src/ui/text.ts): name suggestions of spec
 * §7.3, the DuraCloud host shorthand, and the log progress count. They
 * need no browser, so they are checked directly.
 */
import t from 'tap'
import { countObjectLines, describeSet, describeStore, duraCloudUrl, hostOf, parseJsonObject, suggestStoreName, suggestTaskName, tail } from '../../src/ui/text.js'

t.test('store name suggestions (spec §7.3)', async (t) => {
  t.equal(suggestStoreName({ type: 'filesystem', path: ' /srv/backup ' }), 'Local Directory /srv/backup')
  t.equal(suggestStoreName({ type: 'fedora', url: 'http://host:8080/fedora' }), 'Fedora Repository at host:8080')
  t.equal(suggestStoreName({ type: 'fedora', url: 'https://repo.example.org/fedora' }), 'Fedora Repository at repo.example.org')
  t.equal(suggestStoreName({ type: 'duracloud', url: 'https://demo.duracloud.org/durastore', space: 'images', prefix: '', providerName: 'AMAZON_S3' }),
    'DuraCloud Space images at demo.duracloud.org (AMAZON_S3)')
  t.equal(suggestStoreName({ type: 'duracloud', url: 'https://d.org/durastore', space: 'images', prefix: 'fedora', providerName: 'RACKSPACE' }),
    'DuraCloud Space images/fedora at d.org (RACKSPACE)')
  t.equal(suggestStoreName({ type: 'duracloud', url: 'https://d.org/durastore', space: 'images' }), 'DuraCloud Space images at d.org', 'no provider yet')
  t.equal(suggestStoreName({ type: 'duracloud', url: 'https://d.org/durastore', space: '' }), '', 'nothing until a space is chosen')
  t.equal(suggestStoreName({ type: 'filesystem', path: '' }), '')
  t.equal(suggestStoreName({ type: 'nosuch' }), '')
})

t.test('task name suggestions (spec §7.3)', async (t) => {
  t.equal(suggestTaskName('list', 'All Objects', ['Backup']), 'List All Objects in Backup')
  t.equal(suggestTaskName('copy', 'Demo', ['Repo', 'Repo', 'Backup']), 'Copy Demo from Repo to Backup')
  t.equal(suggestTaskName('copy', 'Demo', ['Repo', 'Repo', '']), '', 'incomplete: no suggestion')
  t.equal(suggestTaskName('list', '', ['Backup']), '')
})

t.test('DuraCloud host shorthand (spec §7.3)', async (t) => {
  t.equal(duraCloudUrl('demo.duracloud.org'), 'https://demo.duracloud.org/durastore', 'a bare host name')
  t.equal(duraCloudUrl('  demo.duracloud.org:8443 '), 'https://demo.duracloud.org:8443/durastore')
  t.equal(duraCloudUrl('http://127.0.0.1:9/durastore/'), 'http://127.0.0.1:9/durastore', 'a URL is kept')
  t.equal(duraCloudUrl('demo.duracloud.org/durastore'), 'https://demo.duracloud.org/durastore', 'a host with a path gets a scheme')
  t.equal(duraCloudUrl(''), '')
  t.equal(hostOf('not a url'), 'not a url')
})

t.test('log progress and tail', async (t) => {
  const log = '# Started at 2011-11-02T14:15:30.123Z\nCopying demo:1..OK (new in destination)\n# Paused at x\n# Resumed at y\nCopying demo:2..ERROR: boom\n  detail line\nCopying demo:3..'
  t.equal(countObjectLines(log), 3, 'object lines only, the open one included')
  t.equal(countObjectLines('# Started at x\ndemo:1\ndemo:2\n# Finished (succeeded) at y\n'), 2)
  t.equal(countObjectLines('# Started at x\nERROR: no such store\n# Finished (failed) at y\n'), 0)
  t.equal(countObjectLines(''), 0)
  t.equal(tail('a\nb\nc\n', 2), 'b\nc')
  t.equal(tail('a\nb\nc', 1), 'c')
  t.equal(tail('a\nb\n', 5), 'a\nb')
  t.equal(tail('', 3), '')
})

t.test('summaries', async (t) => {
  t.equal(describeSet({ type: 'pidPattern', data: 'demo:*' }), 'PIDs matching demo:*')
  t.equal(describeSet({ type: 'pidList', data: 'a:1\na:2 a:3\n\na:4' }), '4 PIDs: a:1, a:2, a:3, …')
  t.equal(describeSet({ type: 'pidList', data: 'a:1' }), '1 PID: a:1')
  t.equal(describeSet({ type: 'query', data: '{"queryType":"SPARQL","queryText":"select ?s"}' }), 'SPARQL query: select ?s')
  t.equal(describeStore({ type: 'filesystem', data: '{"path":"/srv/x"}' }), '/srv/x')
  t.equal(describeStore({ type: 'fedora', data: '{"url":"http://h/fedora","username":"u"}' }), 'http://h/fedora as u')
  t.equal(describeStore({ type: 'duracloud', data: '{"url":"https://d/durastore","space":"s","providerId":"0","providerName":"AMAZON_S3","prefix":""}' }), 'https://d/durastore, space s, account 0 (AMAZON_S3)')
  t.equal(describeStore({ type: 'fedora', data: 'not json' }), '')
  t.equal(parseJsonObject('[1]'), undefined, 'arrays are not objects')
  t.same(parseJsonObject('{"a":1}'), { a: 1 })
})
