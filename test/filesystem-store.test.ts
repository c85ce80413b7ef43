import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import {
  contentFileName,
  contentPath,
  decodeName,
  encodeName,
  isTempName,
  objectDir,
  objectPath,
  parseFileName,
  tempName,
  tempOwner,
  tempIncarnation,
  adoptTempIncarnation,
} from '../src/backend/stores/filesystem-layout.js'
import { contentForCopy, enumerateShare, filesystemConnector, QUERY_UNSUPPORTED } from '../src/backend/stores/filesystem.js'
import { parseFoxml } from '../src/backend/stores/foxml.js'
import { connectorFor, UnsupportedStoreError } from '../src/backend/stores/types.js'
import type { ObjectSetSpec, ObjectStoreConnector } from '../src/backend/stores/types.js'
import { writeFixtureStore } from './fixtures/foxml-fixture.js'

async function tempDir(t: { teardown(fn: () => unknown): void }, name = 'fs-store-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), name))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function collect(store: ObjectStoreConnector, set: ObjectSetSpec, signal = new AbortController().signal): Promise<string[]> {
  const out: string[] = []
  for await (const pid of store.enumerate(set, signal)) out.push(pid)
  return out
}

/** Every file under dir, relative, sorted. */
async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) out.push(relative(dir, join(entry.parentPath ?? entry.path, entry.name)))
  }
  return out.sort()
}

t.test('layout matches spec §5.7.1', async (t) => {
  t.equal(objectPath('/B', 'demo:1'), '/B/d9/59/demo%3A1')
  t.equal(contentPath('/B', 'demo:1', 'DC', 'DC.0'), '/B/d9/59/demo%3A1+DC+DC.0')
  t.equal(objectDir('/B', 'demo:1'), '/B/d9/59')
  t.equal(encodeName('aZ09-=()[];.x'), 'aZ09-=()[];.x', 'safe characters kept')
  t.equal(encodeName('a b+c_d*e'), 'a%20b%2Bc%5Fd%2Ae')
  t.equal(encodeName('v1.'), 'v1%2E', 'a trailing dot is escaped')
  t.equal(encodeName('.'), '%2E')
  t.equal(encodeName('..'), '.%2E', 'no name can be . or ..')
  t.equal(encodeName('a/b'), 'a%2Fb')
  t.equal(encodeName('é€😀'), '%C3%A9%E2%82%AC%F0%9F%98%80', 'UTF-8 bytes, upper-case hex')
  t.equal(encodeName('a~'), 'a%7E')
  for (const name of ['demo:1', 'a b+c_d*e', 'v1.', 'é€😀', '%41']) t.equal(decodeName(encodeName(name)), name, `round trip ${name}`)
  t.equal(decodeName('%E0%A4%A'), undefined, 'bad escapes')
  t.same(parseFileName('demo%3A1'), { kind: 'object', pid: 'demo:1' })
  t.same(parseFileName('demo%3A1+DC+DC.0'), { kind: 'content', pid: 'demo:1', dsId: 'DC', versionId: 'DC.0' })
  t.same(parseFileName('a%2Bb%3A1+D%2BS+V%2E'), { kind: 'content', pid: 'a+b:1', dsId: 'D+S', versionId: 'V.' })
  t.equal(parseFileName('demo:1'), undefined, 'non-canonical names are not objects')
  t.equal(parseFileName('x+y'), undefined)
  t.equal(parseFileName(tempName('demo%3A1')), undefined)
  t.ok(isTempName(tempName('demo%3A1')))
  t.ok(tempName('x').includes('+'), 'temporary names contain +')
  t.notOk(isTempName(contentFileName('demo:1', 'DS', 'V.tmp')), 'real content names are never temporary names')
  t.not(tempName('x'), tempName('x'), 'unique')
})

t.test('options are checked', async (t) => {
  t.throws(() => filesystemConnector({ path: '/x', durable: 'yes' as never }), /"durable"/)
  t.throws(() => filesystemConnector({ path: '/x', blocking: 1 as never }), /"blocking"/)
  t.throws(() => filesystemConnector({ path: 'relative/dir' }), TypeError)
  t.throws(() => filesystemConnector({ path: '/x', staleTempMs: -1 }), TypeError)
  t.throws(() => filesystemConnector({} as never), /"path"/)
})

t.test('connectorFor', async (t) => {
  const dir = await tempDir(t)
  const store = connectorFor({ id: 1, name: 'local', type: 'filesystem', data: JSON.stringify({ path: dir }) })
  t.match(store.description, dir)
  const fedora = { url: 'http://repo.example.org/fedora/', username: 'fedoraAdmin', password: 'pw' }
  t.equal(connectorFor({ id: 2, name: 'f', type: 'fedora', data: JSON.stringify(fedora) }).description, 'Fedora store http://repo.example.org/fedora')
  const dura = { url: 'https://dura.example.org/durastore', username: 'u', password: 'pw', providerId: 3, space: 'archive' }
  t.match(connectorFor({ id: 3, name: 'd', type: 'duracloud', data: JSON.stringify(dura) }).description, /dura\.example\.org/)
  t.throws(() => connectorFor({ id: 2, name: 'f', type: 'fedora', data: '{}' }), /^Object store "f" has no "url" in its data/)
  t.throws(() => connectorFor({ id: 3, name: 'd', type: 'duracloud', data: JSON.stringify({ ...dura, space: ' ' }) }), /^Object store "d" has no "space"/)
  t.throws(() => connectorFor({ id: 2, name: 'f', type: 'fedora', data: JSON.stringify({ ...fedora, url: 'http://u:p@repo.example.org/' }) }),
    /^Object store "f" has unusable data \(option "url" must not contain credentials\); recreate the store\.$/)
  const policy = { outbound: { allowedHosts: ['other.example.org'] } }
  t.throws(() => connectorFor({ id: 2, name: 'f', type: 'fedora', data: JSON.stringify(fedora) }, policy), /is at repo\.example\.org, which this server may not contact/)
  t.throws(() => connectorFor({ id: 5, name: 'z', type: 'zip' as never, data: '{}' }), UnsupportedStoreError)
  t.throws(() => connectorFor({ id: 4, name: 'x', type: 'filesystem', data: '{}' }), /no "path"/)
  t.throws(() => connectorFor({ id: 4, name: 'x', type: 'filesystem', data: 'nope' }), /not valid JSON/)
})

t.test('exists, readObject and readContent', async (t) => {
  const dir = await tempDir(t)
  const [fx] = await writeFixtureStore(dir, { count: 1 })
  const store = filesystemConnector({ path: dir })
  t.ok(await store.exists('demo:1'))
  t.notOk(await store.exists('demo:2'))
  t.notOk(await store.exists('../../etc/passwd'), 'odd PIDs are just absent')
  const obj = await store.readObject('demo:1')
  t.equal(obj?.pid, 'demo:1')
  t.equal(await store.readObject('demo:2'), undefined)
  const stream = await store.readContent('demo:1', 'IMG', 'IMG.2')
  t.ok(stream)
  t.same(await buffer(stream!), fx!.contents.get('IMG+IMG.2'))
  t.equal(await store.readContent('demo:1', 'IMG', 'IMG.9'), undefined)

  await mkdir(objectDir(dir, 'bad:1'), { recursive: true })
  await writeFile(objectPath(dir, 'bad:1'), '<foxml:digitalObject PID="bad:1">')
  await t.rejects(store.readObject('bad:1'), /not valid FOXML/)
  await mkdir(objectDir(dir, 'other:1'), { recursive: true })
  await writeFile(objectPath(dir, 'other:1'), fx!.foxml)
  await t.rejects(store.readObject('other:1'), /declares the PID demo:1/)
})

t.test('pattern and list enumeration', async (t) => {
  const dir = await tempDir(t)
  await writeFixtureStore(dir, { count: 5 })
  await writeFixtureStore(dir, { count: 2, namespace: 'other' })
  const store = filesystemConnector({ path: dir })
  const all = await collect(store, { type: 'pidPattern', pattern: '*' })
  t.same(all.sort(), ['demo:1', 'demo:2', 'demo:3', 'demo:4', 'demo:5', 'other:1', 'other:2'], 'content files are not objects')
  t.same((await collect(store, { type: 'pidPattern', pattern: 'other:*' })).sort(), ['other:1', 'other:2'])
  t.same(await collect(store, { type: 'pidPattern', pattern: '*:3' }), ['demo:3'])
  t.same(await collect(store, { type: 'pidList', pids: ['demo:3', 'nope:1', 'demo:1', 'demo:3'] }), ['demo:3', 'demo:1', 'demo:3'], 'list order and duplicates kept, absent dropped')
  await t.rejects(collect(store, { type: 'query', queryType: 'SPARQL', queryText: 'select' }), { message: QUERY_UNSUPPORTED })
})

t.test('enumeration skips what is not an object and cleans stale temporaries', async (t) => {
  const dir = await tempDir(t)
  await writeFixtureStore(dir, { count: 1 })
  const d = objectDir(dir, 'demo:1')
  // A PID failing the syntax check, a misplaced object, a foreign file, temporaries.
  await mkdir(objectDir(dir, 'nocolon'), { recursive: true })
  await writeFile(objectPath(dir, 'nocolon'), 'x')
  await writeFile(join(dir, 'demo%3A9'), 'misplaced')
  await writeFile(join(d, 'README'), 'foreign, but canonical: syntax check drops it')
  const fresh = join(d, tempName('demo%3A7'))
  const stale = join(d, tempName('demo%3A8'))
  await writeFile(fresh, 'in progress')
  await writeFile(stale, 'left over')
  const old = new Date(Date.now() - 2 * 60 * 60 * 1000)
  await utimes(stale, old, old)
  const store = filesystemConnector({ path: dir })
  t.same(await collect(store, { type: 'pidPattern', pattern: '*' }), ['demo:1'])
  await t.resolves(stat(fresh), 'a write in progress is left alone')
  await t.rejects(stat(stale), { code: 'ENOENT' }, 'a stale temporary is removed')
})

t.test('enumeration streams and stops on abort [D28]', async (t) => {
  const dir = await tempDir(t)
  await writeFixtureStore(dir, { count: 30, versions: 1, largeBytes: 10 })
  const store = filesystemConnector({ path: dir })
  const abort = new AbortController()
  const seen: string[] = []
  for await (const pid of store.enumerate({ type: 'pidPattern', pattern: '*' }, abort.signal)) {
    seen.push(pid)
    if (seen.length === 3) abort.abort()
  }
  t.equal(seen.length, 3, 'nothing after the abort')
  const listAbort = new AbortController()
  const listed: string[] = []
  for await (const pid of store.enumerate({ type: 'pidList', pids: ['demo:1', 'demo:2', 'demo:3'] }, listAbort.signal)) {
    listed.push(pid)
    listAbort.abort()
  }
  t.same(listed, ['demo:1'])
})

t.test('missing base directory fails clearly', async (t) => {
  const dir = await tempDir(t)
  const store = filesystemConnector({ path: join(dir, 'missing') })
  await t.rejects(collect(store, { type: 'pidPattern', pattern: '*' }), /does not exist/)
  t.notOk(await store.exists('demo:1'))
})

t.test('writeObject: new, skipped, replaced', async (t) => {
  const src = await tempDir(t)
  const dst = await tempDir(t)
  const [fx] = await writeFixtureStore(src, { count: 1 })
  const source = filesystemConnector({ path: src })
  const dest = filesystemConnector({ path: dst })
  const obj = (await source.readObject('demo:1'))!
  const asked: string[] = []
  const contents = async (dsId: string, versionId: string) => {
    asked.push(`${dsId}+${versionId}`)
    return (await source.readContent('demo:1', dsId, versionId))!
  }
  t.equal(await dest.writeObject(obj, contents, { overwrite: false }), 'new')
  t.same(asked, ['IMG+IMG.0', 'IMG+IMG.1', 'IMG+IMG.2'], 'content of every managed version, and only those')
  for (const key of ['IMG+IMG.0', 'IMG+IMG.1', 'IMG+IMG.2']) {
    const [dsId, versionId] = key.split('+') as [string, string]
    t.same(await readFile(contentPath(dst, 'demo:1', dsId, versionId)), fx!.contents.get(key), `${key} byte-identical`)
  }
  const written = (await dest.readObject('demo:1'))!
  t.same(written.datastreams[1]!.versions[0]!.contentLocation, { type: 'INTERNAL_ID', ref: 'demo:1+IMG+IMG.0' })
  t.equal(written.datastreams[0]!.versions[0]!.xmlContent, fx!.inline.get('DC.0'), 'inline XML survives the write')
  t.same(parseFoxml(await readFile(objectPath(dst, 'demo:1'), 'utf8'))?.properties, obj.properties)

  asked.length = 0
  t.equal(await dest.writeObject(obj, contents, { overwrite: false }), 'skipped')
  t.same(asked, [], 'a skip reads no content')
  t.equal(await dest.writeObject(obj, contents, { overwrite: true }), 'replaced')
  t.equal(asked.length, 3)

  // A replace drops content files the new object no longer has.
  const smaller = { ...obj, datastreams: obj.datastreams.map((ds) => (ds.id === 'IMG' ? { ...ds, versions: ds.versions.slice(0, 1) } : ds)) }
  t.equal(await dest.writeObject(smaller, contents, { overwrite: true }), 'replaced')
  const files = await listFiles(dst)
  t.same(files.map((f) => f.split('/').pop()), ['demo%3A1', 'demo%3A1+IMG+IMG.0'])
})

t.test('a failed write leaves no trace and never harms what existed [D30]', async (t) => {
  const src = await tempDir(t)
  const dst = await tempDir(t)
  await writeFixtureStore(src, { count: 1 })
  const source = filesystemConnector({ path: src })
  const dest = filesystemConnector({ path: dst })
  const obj = (await source.readObject('demo:1'))!
  let calls = 0
  const failing = async (dsId: string, versionId: string) => {
    if (++calls === 3) throw new Error('source went away')
    return (await source.readContent('demo:1', dsId, versionId))!
  }
  await t.rejects(dest.writeObject(obj, failing, { overwrite: false }), /source went away/)
  t.same(await listFiles(dst), [], 'new object: no object file, no content, no temporaries')

  // Existing object: a failed overwrite keeps the old object and content intact.
  const good = async (dsId: string, versionId: string) => (await source.readContent('demo:1', dsId, versionId))!
  t.equal(await dest.writeObject(obj, good, { overwrite: false }), 'new')
  const before = await listFiles(dst)
  const objectBefore = await readFile(objectPath(dst, 'demo:1'))
  const contentBefore = await readFile(contentPath(dst, 'demo:1', 'IMG', 'IMG.0'))
  const changed = { ...obj, properties: [{ name: 'x', value: 'changed' }] }
  calls = 0
  await t.rejects(dest.writeObject(changed, failing, { overwrite: true }), /source went away/)
  t.same(await listFiles(dst), before, 'same files as before')
  t.same(await readFile(objectPath(dst, 'demo:1')), objectBefore, 'object untouched')
  t.same(await readFile(contentPath(dst, 'demo:1', 'IMG', 'IMG.0')), contentBefore, 'content untouched')

  // A stream that errors midway is a failure too.
  const broken = async () =>
    new Readable({
      read() {
        this.destroy(new Error('read error'))
      },
    })
  await t.rejects(dest.writeObject(changed, broken, { overwrite: true }), /read error/)
  t.same(await listFiles(dst), before)
})

t.test('content files are written before the object file', async (t) => {
  const src = await tempDir(t)
  const dst = await tempDir(t)
  await writeFixtureStore(src, { count: 1 })
  const source = filesystemConnector({ path: src })
  const dest = filesystemConnector({ path: dst })
  const obj = (await source.readObject('demo:1'))!
  let objectVisibleDuringContent = false
  const contents = async (dsId: string, versionId: string) => {
    objectVisibleDuringContent ||= await dest.exists('demo:1')
    return (await source.readContent('demo:1', dsId, versionId))!
  }
  await dest.writeObject(obj, contents, { overwrite: false })
  t.notOk(objectVisibleDuringContent, 'the object appears only after all content is complete')
  t.ok(await dest.exists('demo:1'))
})

/** A temporary name made by another process, which has exited since. */
function deadTempName(): string {
  const mod = new URL('../src/backend/stores/filesystem-layout.ts', import.meta.url).href
  const code = `const m = await import(${JSON.stringify(mod)}); console.log(m.tempName('demo%3A1'))`
  const r = spawnSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', code], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(r.stderr)
  return r.stdout.trim()
}

/** A temporary name made by another process, which keeps running until the test ends. */
async function liveTempName(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const mod = new URL('../src/backend/stores/filesystem-layout.ts', import.meta.url).href
  const code = `const m = await import(${JSON.stringify(mod)}); console.log(m.tempName('demo%3A1')); setInterval(() => {}, 1000)`
  const child = spawn(process.execPath, [...process.execArgv, '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => void child.kill('SIGKILL'))
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString()
      if (out.includes('\n')) resolve(out.trim())
    })
    child.once('exit', () => reject(new Error('the writer exited early')))
  })
}

t.test('temporaries of a writer that no longer runs are removed at once; others only when stale', async (t) => {
  const dir = await tempDir(t)
  await writeFixtureStore(dir, { count: 1, versions: 1, largeBytes: 10 })
  const d = objectDir(dir, 'demo:1')
  const dead = deadTempName()
  const live = await liveTempName(t)
  const own = tempName('demo%3A1')
  t.equal(tempOwner(own), 'self')
  t.equal(tempOwner(dead), 'dead', 'its writer has exited')
  t.equal(tempOwner(live), 'unknown', 'its writer still runs')
  t.equal(tempOwner('demo%3A1+~legacy-name.tmp'), 'unknown', 'names of other formats are judged by age')
  for (const name of [dead, live, own]) await writeFile(join(d, name), 'partial')
  t.same(await collect(filesystemConnector({ path: dir }), { type: 'pidPattern', pattern: '*' }), ['demo:1'], 'temporaries are never objects')
  await t.rejects(stat(join(d, dead)), { code: 'ENOENT' }, 'the dead writer\'s temporary is gone')
  await t.resolves(stat(join(d, live)), 'a live writer\'s temporary is left alone')
  await t.resolves(stat(join(d, own)), 'our own is left alone')

  // Worker threads take over their parent's token; anything else is ignored.
  const token = tempIncarnation()
  t.match(token, /^[0-9a-f]{12}$/)
  adoptTempIncarnation('not a token')
  t.equal(tempIncarnation(), token)
  adoptTempIncarnation(token)
  t.equal(tempOwner(tempName('x')), 'self')
})

t.test('blocking and durable connectors write the same store as the default one', async (t) => {
  const src = await tempDir(t)
  const fx = await writeFixtureStore(src, { count: 3, managed: (i) => i !== 1 })
  const source = filesystemConnector({ path: src })
  const stores = { plain: await tempDir(t), blocking: await tempDir(t), durable: await tempDir(t) }
  const connectors = {
    plain: filesystemConnector({ path: stores.plain }),
    blocking: filesystemConnector({ path: stores.blocking, blocking: true }),
    durable: filesystemConnector({ path: stores.durable, durable: true }),
  }
  for (const [kind, dest] of Object.entries(connectors)) {
    for (const { pid } of fx) {
      const obj = (await source.readObject(pid))!
      t.equal(await dest.writeObject(obj, async (ds, v) => (await source.readContent(pid, ds, v))!, { overwrite: false }), 'new', `${kind} ${pid}`)
    }
  }
  const files = await listFiles(stores.plain)
  t.equal(files.length, 3 + 3 + 3, 'three objects, two of them with three versions')
  for (const kind of ['blocking', 'durable'] as const) {
    t.same(await listFiles(stores[kind]), files, `${kind}: same files`)
    for (const f of files) t.same(await readFile(join(stores[kind], f)), await readFile(join(stores.plain, f)), `${kind}: ${f} identical`)
  }
  // Reads agree too.
  const blocking = filesystemConnector({ path: src, blocking: true })
  t.same(await blocking.readObject('demo:1'), await source.readObject('demo:1'))
  t.equal(await blocking.exists('demo:2'), true)
  t.equal(await blocking.exists('demo:9'), false)
  t.same(await buffer((await blocking.readContent('demo:1', 'IMG', 'IMG.2'))!), fx[0]!.contents.get('IMG+IMG.2'))
  t.same(await collect(blocking, { type: 'pidPattern', pattern: '*' }).then((p) => p.sort()), ['demo:1', 'demo:2', 'demo:3'])
})

t.test('content streams: read on demand, absent versions, vanished files, streamed writes', async (t) => {
  const src = await tempDir(t)
  const dst = await tempDir(t)
  const [fx] = await writeFixtureStore(src, { count: 1 })
  const store = filesystemConnector({ path: src })
  // 70 000 bytes: more than one read.
  t.same(await buffer((await store.readContent('demo:1', 'IMG', 'IMG.2'))!), fx!.contents.get('IMG+IMG.2'))
  t.equal(await store.readContent('demo:1', 'IMG', 'IMG.9'), undefined, 'no such version')
  t.equal(await store.readContent('demo:9', 'IMG', 'IMG.0'), undefined, 'no such object')
  await mkdir(contentPath(src, 'demo:1', 'DIR', 'DIR.0'))
  t.equal(await store.readContent('demo:1', 'DIR', 'DIR.0'), undefined, 'a directory is not content')
  const unread = (await store.readContent('demo:1', 'IMG', 'IMG.0'))!
  unread.destroy()
  await new Promise((r) => unread.once('close', r))
  t.pass('a stream destroyed unread closes cleanly')
  const gone = (await store.readContent('demo:1', 'IMG', 'IMG.1'))!
  await rm(contentPath(src, 'demo:1', 'IMG', 'IMG.1'))
  await t.rejects(buffer(gone), { code: 'ENOENT' }, 'a file removed before reading makes the stream fail')

  // A source that is not a file of a filesystem store is streamed.
  const obj = (await store.readObject('demo:1'))!
  const bytes = Buffer.from('streamed, not copied by path')
  t.equal(await filesystemConnector({ path: dst }).writeObject(obj, async () => Readable.from([bytes]), { overwrite: false }), 'new')
  t.same(await readFile(contentPath(dst, 'demo:1', 'IMG', 'IMG.0')), bytes)
})

t.test('a directory removed behind a connector\'s back is made again on the next write', async (t) => {
  const src = await tempDir(t)
  const fx = await writeFixtureStore(src, { count: 1 })
  const source = filesystemConnector({ path: src })
  const obj = (await source.readObject('demo:1'))!
  const topLevel = (base: string) => join(base, relative(base, objectDir(base, 'demo:1')).split('/')[0]!)
  for (const blocking of [false, true]) {
    const mode = blocking ? 'blocking' : 'non-blocking'
    const dst = await tempDir(t)
    const dest = filesystemConnector({ path: dst, blocking })
    const ways = {
      'by path': async (ds: string, v: string) => (await source.readContent('demo:1', ds, v))!,
      'by path, unchecked': async (ds: string, v: string) => contentForCopy(source, dest, 'demo:1', ds, v, () => Promise.reject(new Error('absent')))!,
      streamed: async (ds: string, v: string) => Readable.from([fx[0]!.contents.get(`${ds}+${v}`)!]),
    }
    for (const [way, contents] of Object.entries(ways)) {
      t.equal(await dest.writeObject(obj, contents, { overwrite: false }), 'new', `${mode}, ${way}: first write`)
      // The connector remembers the directory; it goes away (with its parent) before the next write.
      await rm(topLevel(dst), { recursive: true })
      t.equal(await dest.writeObject(obj, contents, { overwrite: false }), 'new', `${mode}, ${way}: written again`)
      t.same(await listFiles(dst), (await listFiles(src)).filter((f) => !f.includes('+EXT+') && !f.includes('+RED+')), `${mode}, ${way}: the object and its managed content, nothing else`)
      for (const [key, bytes] of fx[0]!.contents) {
        if (key.startsWith('IMG+')) t.same(await readFile(join(objectDir(dst, 'demo:1'), `demo%3A1+${key}`)), bytes, `${mode}, ${way}: ${key} byte-identical`)
      }
      t.equal(await dest.writeObject(obj, contents, { overwrite: false }), 'skipped', `${mode}, ${way}: then it exists`)
      await rm(topLevel(dst), { recursive: true })
    }
  }
})

t.test('contentForCopy: copied by path without a look first; a missing file gets what the caller supplies', async (t) => {
  const src = await tempDir(t)
  const dst = await tempDir(t)
  const [fx] = await writeFixtureStore(src, { count: 1 })
  const source = filesystemConnector({ path: src })
  const dest = filesystemConnector({ path: dst, blocking: true })
  const other = { description: 'another kind of store' } as ObjectStoreConnector
  t.equal(contentForCopy(source, other, 'demo:1', 'IMG', 'IMG.0', () => Promise.reject(new Error('x'))), undefined, 'only between filesystem stores')
  t.equal(contentForCopy(other, dest, 'demo:1', 'IMG', 'IMG.0', () => Promise.reject(new Error('x'))), undefined)

  const obj = (await source.readObject('demo:1'))!
  await rm(contentPath(src, 'demo:1', 'IMG', 'IMG.1'))
  await rm(contentPath(src, 'demo:1', 'IMG', 'IMG.2'))
  await mkdir(contentPath(src, 'demo:1', 'IMG', 'IMG.2'))
  const absent: string[] = []
  const contents = async (ds: string, v: string) =>
    contentForCopy(source, dest, 'demo:1', ds, v, async () => {
      absent.push(v)
      return Readable.from([Buffer.from(`instead of ${v}`)])
    })!
  t.equal(await dest.writeObject(obj, contents, { overwrite: false }), 'new')
  t.same(absent, ['IMG.1', 'IMG.2'], 'a missing file and a directory in its place are both absent')
  t.same(await readFile(contentPath(dst, 'demo:1', 'IMG', 'IMG.0')), fx!.contents.get('IMG+IMG.0'), 'present content copied by path')
  t.equal(await readFile(contentPath(dst, 'demo:1', 'IMG', 'IMG.1'), 'utf8'), 'instead of IMG.1')
  t.equal(await readFile(contentPath(dst, 'demo:1', 'IMG', 'IMG.2'), 'utf8'), 'instead of IMG.2')

  // A caller with nothing to supply fails the write, which leaves no trace.
  const empty = await tempDir(t)
  const failing = filesystemConnector({ path: empty, blocking: true })
  const refuse = async (ds: string, v: string) => contentForCopy(source, failing, 'demo:1', ds, v, () => Promise.reject(new Error(`no content for ${v}`)))!
  await t.rejects(failing.writeObject(obj, refuse, { overwrite: false }), { message: 'no content for IMG.1' }, 'the caller\'s error, as it is')
  t.same(await listFiles(empty), [], 'no object, no content, no temporaries')
})

t.test('enumerateShare: the shares of a walk together enumerate each object once', async (t) => {
  const dir = await tempDir(t)
  await writeFixtureStore(dir, { count: 60, versions: 1, largeBytes: 10, externalContent: false })
  await writeFixtureStore(dir, { count: 5, namespace: 'other', versions: 1, largeBytes: 10, externalContent: false })
  const store = filesystemConnector({ path: dir, blocking: true })
  const share = async (pattern: string, index: number, count: number) => {
    const out: string[] = []
    for await (const pid of enumerateShare(store, pattern, new AbortController().signal, { index, count })) out.push(pid)
    return out
  }
  for (const pattern of ['*', 'other:*']) {
    const all = (await collect(store, { type: 'pidPattern', pattern })).sort()
    for (const count of [1, 2, 3]) {
      const parts: string[][] = []
      for (let index = 0; index < count; index++) parts.push(await share(pattern, index, count))
      t.same(parts.flat().sort(), all, `${pattern} in ${count} shares: every object, once`)
      if (pattern === '*') t.ok(parts.every((p) => p.length > 0), `${count} shares: each has work`)
    }
  }
  // Stops on abort.
  const abort = new AbortController()
  const seen: string[] = []
  for await (const pid of enumerateShare(store, '*', abort.signal, { index: 0, count: 2 })) {
    seen.push(pid)
    abort.abort()
  }
  t.equal(seen.length, 1, 'nothing after the abort')
  t.throws(() => enumerateShare({} as ObjectStoreConnector, '*', abort.signal, { index: 0, count: 1 }), TypeError)
  t.throws(() => enumerateShare(store, '*', abort.signal, { index: 2, count: 2 }), RangeError)
  const missing = filesystemConnector({ path: join(dir, 'missing') })
  await t.rejects(async () => {
    for await (const pid of enumerateShare(missing, '*', new AbortController().signal, { index: 1, count: 2 })) t.fail(pid)
  }, /does not exist/, 'a missing base directory fails every share')
})
