/**
 * Copy and list tasks with remote stores, through the HTTP API of a real
 * server (spec §4.5, §5.3, §5.4, §5.7): a filesystem store's objects are
 * copied into a Fedora repository or a DuraCloud space and back, byte for byte, and the outbound
 * host allow-list applies to stores as it does to the DuraCloud look-ups.
 * The remote side is a small local server speaking the documented REST API.
 */
import t from 'tap'
import type { Test as Tap } from 'tap'
import { readFile } from 'node:fs/promises'
import { startTestServer } from './helpers/server.js'
import type { TestServer } from './helpers/server.js'
import { checkFormat, copyData, copyLines, finishedRun, fsStore, make, objectPids, objectSet, task } from './helpers/task-api.js'
import { FakeFedora } from './helpers/fake-fedora.js'
import { startFakeDuraCloud } from './helpers/fake-duracloud.js'
import { writeFixtureStore } from './fixtures/foxml-fixture.js'
import type { FixtureObject } from './fixtures/foxml-fixture.js'
import { contentPath } from '../src/backend/stores/filesystem-layout.js'

async function fedora(t: Tap, s: TestServer, name = 'Fedora'): Promise<{ fake: FakeFedora; uri: string }> {
  const fake = await FakeFedora.start({ username: 'fedoraAdmin', password: ' spaced pw ' })
  t.teardown(() => fake.close())
  const data = JSON.stringify({ url: fake.url + '/', username: 'fedoraAdmin', password: ' spaced pw ' })
  return { fake, uri: (await make(s, 'objectStores', 'objectStore', { name, type: 'fedora', data })).uri }
}

/** Every managed (IMG) version of `obj` in a filesystem store, byte for byte. */
async function sameManaged(t: Tap, obj: FixtureObject, dir: string): Promise<void> {
  for (const [key, bytes] of obj.contents) {
    const [dsId, versionId] = key.split('+') as [string, string]
    if (dsId === 'IMG') t.same(await readFile(contentPath(dir, obj.pid, dsId, versionId)), bytes, `${obj.pid} ${key}`)
  }
}

t.test('Fedora: copy in, list, copy back out (spec §5.7.2)', async (t) => {
  const s = await startTestServer(t, { taskManager: { intervalMs: 200 } })
  const src = await fsStore(s, 'Source')
  const back = await fsStore(s, 'Back')
  const objects = await writeFixtureStore(src.dir, { count: 3, versions: 2, largeBytes: 70_000 })
  const repo = await fedora(t, s)
  const all = await objectSet(s, 'pidPattern', 'demo:*')

  const into = await finishedRun(s, (await task(s, 'copy', copyData({ set: all, query: src.uri, source: src.uri, dest: repo.uri }))).uri)
  checkFormat(t, into.text, 'succeeded', 'copy')
  t.same(copyLines(into.lines).sort(), ['demo:1', 'demo:2', 'demo:3'].map((pid) => `Copying ${pid}..OK (new in destination)`))
  t.same([...repo.fake.objects.keys()].sort(), ['demo:1', 'demo:2', 'demo:3'], 'ingested')
  for (const obj of objects) {
    for (const [key, bytes] of obj.contents) {
      const [dsId, versionId] = key.split('+') as [string, string]
      if (dsId === 'IMG') t.same(repo.fake.content(obj.pid, dsId, versionId), bytes, `${obj.pid} ${key} staged and ingested byte for byte`)
    }
  }
  t.ok(repo.fake.requests.every((r) => r.authorization === 'Basic ' + Buffer.from('fedoraAdmin: spaced pw ').toString('base64')), 'every request carries the credentials, spaces kept')

  const list = await finishedRun(s, (await task(s, 'list', JSON.stringify({ setUri: all, storeUri: repo.uri }))).uri)
  checkFormat(t, list.text, 'succeeded', 'list')
  t.same(list.lines.slice(1, -1).sort(), ['demo:1', 'demo:2', 'demo:3'], 'the list task enumerates the repository')

  const again = await finishedRun(s, (await task(s, 'copy', copyData({ set: all, query: src.uri, source: src.uri, dest: repo.uri }))).uri)
  t.same(copyLines(again.lines).map((l) => l.replace(/^Copying \S+\.\./, '')), Array(3).fill('SKIPPED (exists in destination)'), 'existing objects are skipped')

  const out = await finishedRun(s, (await task(s, 'copy', copyData({ set: all, query: repo.uri, source: repo.uri, dest: back.uri }))).uri)
  checkFormat(t, out.text, 'succeeded', 'copy')
  t.same(await objectPids(back.dir), ['demo:1', 'demo:2', 'demo:3'], 'copied back out of the repository')
  for (const obj of objects) await sameManaged(t, obj, back.dir)
})

t.test('Fedora: errors end the run Failed with a line that says what to fix, and no password', async (t) => {
  const s = await startTestServer(t, { taskManager: { intervalMs: 200 } })
  const src = await fsStore(s, 'Source')
  await writeFixtureStore(src.dir, { count: 2, versions: 1, largeBytes: 10 })
  const repo = await fedora(t, s)
  repo.fake.fail({ method: 'POST', path: 'upload', status: 401 })
  const set = await objectSet(s, 'pidList', 'demo:1 demo:2')
  const run = await finishedRun(s, (await task(s, 'copy', copyData({ set, query: src.uri, source: src.uri, dest: repo.uri }))).uri)
  t.equal(run.log.resultType, 'Failed')
  checkFormat(t, run.text, 'failed', 'copy')
  t.match(copyLines(run.lines), [/^Copying demo:1\.\.ERROR: Fedora at http:\/\/127\.0\.0\.1:\d+\/fedora answered 401 to POST upload.*check the store's username and password/])
  t.notMatch(run.text, /spaced pw/)
  t.equal(repo.fake.objects.size, 0, 'nothing ingested')
})

t.test('remote stores obey the outbound host allow-list', async (t) => {
  const s = await startTestServer(t, { taskManager: { intervalMs: 200 }, outboundHosts: ['fedora.example.org'] })
  const src = await fsStore(s, 'Source')
  await writeFixtureStore(src.dir, { count: 1, versions: 1, largeBytes: 10 })
  const repo = await fedora(t, s)
  const set = await objectSet(s, 'pidPattern', '*')
  const run = await finishedRun(s, (await task(s, 'copy', copyData({ set, query: src.uri, source: src.uri, dest: repo.uri }))).uri)
  t.equal(run.log.resultType, 'Failed')
  t.match(run.lines[1], /^ERROR: Object store "Fedora" is at 127\.0\.0\.1, which this server may not contact; ask the administrator to add it to CLOUDSYNC_OUTBOUND_HOSTS\.$/)
  t.same(repo.fake.requests, [], 'the repository was never contacted')
})

t.test('DuraCloud: copy in under a prefix, list, copy back out (spec §5.7.3)', async (t) => {
  const s = await startTestServer(t, { taskManager: { intervalMs: 200 } })
  const src = await fsStore(s, 'Source')
  const back = await fsStore(s, 'Back')
  const objects = await writeFixtureStore(src.dir, { count: 3, versions: 2, largeBytes: 70_000 })
  const fake = await startFakeDuraCloud({ username: 'dura', password: 'dura pw', storeId: '7', space: 'archive' })
  t.teardown(() => fake.close())
  const data = JSON.stringify({ url: fake.url, username: 'dura', password: 'dura pw', providerId: 7, space: 'archive', prefix: 'fedora/' })
  const space = (await make(s, 'objectStores', 'objectStore', { name: 'Space', type: 'duracloud', data })).uri
  const all = await objectSet(s, 'pidPattern', 'demo:*')

  const into = await finishedRun(s, (await task(s, 'copy', copyData({ set: all, query: src.uri, source: src.uri, dest: space }))).uri)
  checkFormat(t, into.text, 'succeeded', 'copy')
  t.same(copyLines(into.lines).sort(), ['demo:1', 'demo:2', 'demo:3'].map((pid) => `Copying ${pid}..OK (new in destination)`))
  for (const obj of objects) {
    t.ok(fake.items.has(`fedora/${obj.pid}`), `${obj.pid}: FOXML stored under the prefix`)
    for (const [key, bytes] of obj.contents) {
      if (key.startsWith('IMG+')) t.same(fake.items.get(`fedora/${obj.pid}+${key}`)?.body, bytes, `${obj.pid} ${key} byte for byte`)
    }
  }
  t.ok(fake.requests.every((r) => r.query.storeID === '7'), 'every request names the provider (storeID)')

  const list = await finishedRun(s, (await task(s, 'list', JSON.stringify({ setUri: all, storeUri: space }))).uri)
  checkFormat(t, list.text, 'succeeded', 'list')
  t.same(list.lines.slice(1, -1).sort(), ['demo:1', 'demo:2', 'demo:3'], 'PIDs without the prefix, content items left out')

  const out = await finishedRun(s, (await task(s, 'copy', copyData({ set: all, query: space, source: space, dest: back.uri }))).uri)
  checkFormat(t, out.text, 'succeeded', 'copy')
  t.same(await objectPids(back.dir), ['demo:1', 'demo:2', 'demo:3'])
  for (const obj of objects) await sameManaged(t, obj, back.dir)

  // A query set cannot be evaluated outside Fedora.
  const query = await objectSet(s, 'query', '{"queryType":"SPARQL","queryText":"select ?s where { ?s ?p ?o }"}')
  const refused = await finishedRun(s, (await task(s, 'list', JSON.stringify({ setUri: query, storeUri: space }))).uri)
  t.equal(refused.log.resultType, 'Failed')
  t.match(refused.lines[1], /^ERROR: Query object sets can only be evaluated by a Fedora object store/)
})
