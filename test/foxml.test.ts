import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import {
  convertToManaged,
  decodeEntities,
  hasManagedDatastream,
  parseFoxml,
  serializeFoxml,
} from '../src/backend/stores/foxml.js'
import type { FoxmlObject } from '../src/backend/stores/foxml.js'
import { writeFixtureStore } from './fixtures/foxml-fixture.js'
import type { FixtureObject } from './fixtures/foxml-fixture.js'

async function fixture(t: { teardown(fn: () => unknown): void }, options = {}): Promise<FixtureObject[]> {
  const dir = await mkdtemp(join(tmpdir(), 'foxml-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return writeFixtureStore(dir, { count: 2, ...options })
}

t.test('reads object properties, datastreams and versions', async (t) => {
  const [fx] = await fixture(t)
  const obj = parseFoxml(fx!.foxml)!
  t.ok(obj, 'parsed')
  t.equal(obj.pid, 'demo:1')
  t.equal(obj.fedoraUri, 'info:fedora/demo:1')
  t.same(obj.properties[1], { name: 'info:fedora/fedora-system:def/model#label', value: 'Object 0 & "friends" é' }, 'entities decoded')
  t.equal(obj.properties.length, 4)
  t.same(obj.datastreams.map((d) => [d.id, d.controlGroup, d.versions.length]), [
    ['DC', 'X', 2],
    ['IMG', 'M', 3],
    ['EXT', 'E', 2],
    ['RED', 'R', 1],
  ])
  const img = obj.datastreams[1]!.versions[2]!
  t.equal(img.id, 'IMG.2')
  t.equal(img.label, 'Image')
  t.equal(img.created, '2011-11-03T11:00:00.000Z')
  t.equal(img.mimeType, 'application/octet-stream')
  t.equal(img.size, '70000')
  t.equal(img.contentDigest?.type, 'MD5')
  t.same(img.contentLocation, { type: 'INTERNAL_ID', ref: 'demo:1+IMG+IMG.2' })
  const ext = obj.datastreams[2]!.versions[0]!
  t.same(ext.contentLocation, { type: 'URL', ref: 'http://example.org/content/0/EXT.0?a=1&b=2' })
  t.equal(obj.datastreams[0]!.versions[0]!.label, 'Dublin Core & more')
  t.equal(obj.datastreams[0]!.versions[0]!.formatUri, 'http://www.openarchives.org/OAI/2.0/oai_dc/')
})

t.test('inline XML is kept verbatim with its in-scope namespaces', async (t) => {
  const [fx] = await fixture(t)
  const obj = parseFoxml(fx!.foxml)!
  const dc = obj.datastreams[0]!
  for (const v of dc.versions) t.equal(v.xmlContent, fx!.inline.get(v.id), `${v.id} byte-identical`)
  t.equal(dc.versions[0]!.xmlNamespaces?.dcterms, 'http://purl.org/dc/terms/', 'root-declared prefix recorded')
})

t.test('serialize → parse round-trips the model and the inline bytes', async (t) => {
  const [fx] = await fixture(t)
  const obj = parseFoxml(fx!.foxml)!
  const text = serializeFoxml(obj)
  const again = parseFoxml(text)!
  t.same(again, obj, 'same model after a round trip')
  for (const xml of fx!.inline.values()) t.ok(text.includes(xml), 'inline XML written verbatim')
  t.match(text, /<foxml:xmlContent xmlns:dcterms="http:\/\/purl\.org\/dc\/terms\/">/, 'needed namespace declared on xmlContent')
  t.notMatch(text, /<foxml:xmlContent[^>]*xmlns:foxml/, 'root bindings not repeated')
  // An independent parser sees the inline content as well-formed, namespaced XML.
  const doc = new XMLParser({ ignoreAttributes: false }).parse(text)
  t.ok(doc['foxml:digitalObject'], 'well-formed')
})

t.test('attribute values are escaped on write', async (t) => {
  const obj: FoxmlObject = {
    pid: 'demo:1',
    properties: [{ name: 'label', value: 'a & <b> "c"\ttab\nline' }],
    extProperties: [{ name: 'ext', value: 'x' }],
    datastreams: [
      {
        id: 'B',
        controlGroup: 'M',
        versions: [{ id: 'B.0', binaryContent: 'AAEC', contentDigest: { type: 'MD5', digest: 'x' } }],
      },
    ],
  }
  const back = parseFoxml(serializeFoxml(obj))!
  t.equal(back.properties[0]!.value, 'a & <b> "c"\ttab\nline')
  t.same(back.extProperties, [{ name: 'ext', value: 'x' }])
  t.equal(back.datastreams[0]!.versions[0]!.binaryContent, 'AAEC')
})

t.test('refuses DOCTYPE, malformed and non-FOXML input', async (t) => {
  const ok = '<foxml:digitalObject xmlns:foxml="info:fedora/fedora-system:def/foxml#" PID="a:b"/>'
  t.ok(parseFoxml(ok), 'minimal object parses')
  t.equal(parseFoxml(ok)!.datastreams.length, 0)
  t.equal(parseFoxml('<!DOCTYPE x [<!ENTITY e "boom">]>' + ok), undefined, 'DOCTYPE refused')
  t.equal(parseFoxml('<?xml version="1.0"?><!doctype x>' + ok), undefined, 'doctype in any case refused')
  t.equal(parseFoxml('<foxml:digitalObject PID="a:b"><foxml:datastream>'), undefined, 'unclosed')
  t.equal(parseFoxml('<other PID="a:b"/>'), undefined, 'wrong root')
  t.equal(parseFoxml('<foxml:digitalObject xmlns:foxml="x"/>'), undefined, 'no PID')
  t.equal(parseFoxml(''), undefined)
  t.equal(parseFoxml('not xml'), undefined)
  t.equal(
    parseFoxml('<foxml:digitalObject xmlns:foxml="x" PID="a:b"><foxml:datastream ID="D" CONTROL_GROUP="Q"/></foxml:digitalObject>'),
    undefined,
    'unknown control group',
  )
  t.equal(
    parseFoxml('<foxml:digitalObject xmlns:foxml="x" PID="a:b"><foxml:datastream ID="D" CONTROL_GROUP="M"><foxml:datastreamVersion/></foxml:datastream></foxml:digitalObject>'),
    undefined,
    'version without ID',
  )
  t.equal(parseFoxml(42 as unknown as string), undefined, 'not a string')
})

t.test('unprefixed FOXML with a default namespace', async (t) => {
  const text = '<digitalObject xmlns="info:fedora/fedora-system:def/foxml#" PID="a:b"><datastream ID="DC" CONTROL_GROUP="X"><datastreamVersion ID="DC.0"><xmlContent><x>1</x></xmlContent></datastreamVersion></datastream></digitalObject>'
  const obj = parseFoxml(text)!
  t.equal(obj.datastreams[0]!.versions[0]!.xmlContent, '<x>1</x>')
  const out = serializeFoxml(obj)
  t.match(out, /<foxml:xmlContent xmlns="info:fedora\/fedora-system:def\/foxml#"><x>1<\/x><\/foxml:xmlContent>/, 'default namespace kept in scope')
})

t.test('decodeEntities', async (t) => {
  t.equal(decodeEntities('a &amp;lt; &#x41;&#66; &apos;&quot; &unknown;'), "a &lt; AB '\" &unknown;")
  t.equal(decodeEntities('plain'), 'plain')
})

t.test('managed detection and E/R → M conversion', async (t) => {
  const [withM, withoutM] = await fixture(t, { managed: (i: number) => i === 0 })
  const a = parseFoxml(withM!.foxml)!
  const b = parseFoxml(withoutM!.foxml)!
  t.ok(hasManagedDatastream(a))
  t.notOk(hasManagedDatastream(b))
  t.equal(convertToManaged(b, { external: false, redirect: false }), b, 'nothing to convert → same object')
  const ext = convertToManaged(b, { external: true, redirect: false })
  t.same(ext.datastreams.map((d) => d.controlGroup), ['X', 'M', 'R'])
  t.equal(ext.datastreams[1]!.versions[0]!.contentLocation, undefined, 'location dropped')
  t.equal(ext.datastreams[1]!.versions[0]!.mimeType, 'text/plain', 'other attributes kept')
  t.equal(b.datastreams[1]!.controlGroup, 'E', 'input not modified')
  const both = convertToManaged(b, { external: true, redirect: true })
  t.same(both.datastreams.map((d) => d.controlGroup), ['X', 'M', 'M'])
  t.ok(hasManagedDatastream(both))
})

t.test('refuses a document cut short anywhere before the end of its root', async (t) => {
  const [fx] = await fixture(t)
  const text = fx!.foxml
  const refused: number[] = []
  const accepted: number[] = []
  for (let length = 0; length < text.length; length++) {
    const head = text.slice(0, length)
    const complete = head.trimEnd().endsWith('</foxml:digitalObject>')
    if (parseFoxml(head) === undefined) refused.push(length)
    else if (!complete) accepted.push(length)
  }
  t.same(accepted, [], 'no truncated prefix reads as an object')
  t.equal(refused.length, text.lastIndexOf('</foxml:digitalObject>') + '</foxml:digitalObject>'.length, 'every prefix without the root end tag is refused')
  t.ok(parseFoxml(text.trimEnd()), 'complete without its final line end')
  t.ok(parseFoxml(text + '\n<!-- trailing comment -->\n<?pi after?>\n'), 'comments, PIs and white space after the root are fine')
})

t.test('refuses mismatched, missing and stray tags, also in inline XML', async (t) => {
  const [fx] = await fixture(t)
  const text = fx!.foxml
  const swap = (from: string, to: string) => {
    t.ok(text.includes(from), `fixture has ${from}`)
    return text.replace(from, to)
  }
  t.equal(parseFoxml(swap('</foxml:datastreamVersion>', '</foxml:datastream>')), undefined, 'mismatched end tag')
  t.equal(parseFoxml(swap('</foxml:datastreamVersion>', '')), undefined, 'missing end tag')
  t.equal(parseFoxml(swap('</foxml:objectProperties>', '</foxml:objectProperties></foxml:objectProperties>')), undefined, 'end tag without a start tag')
  t.equal(parseFoxml(swap('</dc:identifier>', '</dc:identifer>')), undefined, 'mismatch inside xmlContent')
  t.equal(parseFoxml(swap('<dc:rights/>', '<dc:rights>')), undefined, 'unclosed element inside xmlContent')
  t.equal(parseFoxml(text + '<foxml:digitalObject PID="x:y"/>'), undefined, 'a second root')
  t.equal(parseFoxml(text + 'text'), undefined, 'text after the root')
  t.equal(parseFoxml(swap('VERSION="1.1"', 'VERSION="1.1" VERSION="1.1"')), undefined, 'repeated attribute')
  t.equal(parseFoxml(swap('VERSION="1.1"', 'VERSION=1.1')), undefined, 'unquoted attribute')
  t.equal(parseFoxml(swap('VERSION="1.1"', 'VERSION="<1.1"')), undefined, '< in an attribute value')
  t.equal(parseFoxml(swap('&amp;', '&')), undefined, 'a bare & in an attribute value')
  t.equal(parseFoxml(swap('&amp; &lt;friends', '& &lt;friends')), undefined, 'a bare & in text')
  t.equal(parseFoxml(swap('<!--', '<!-')), undefined, 'broken comment')
  t.equal(parseFoxml(swap('<?xml version="1.0" encoding="UTF-8"?>', '\n<?xml version="1.0"?>')), undefined, 'XML declaration not at the start')
  t.ok(parseFoxml('\uFEFF' + text), 'a byte order mark is fine')
})

t.test('refuses whatever fast-xml-parser\'s validator refuses, for every one-character change', async (t) => {
  const [fx] = await fixture(t)
  const text = fx!.foxml
  const weaker: string[] = []
  const check = (changed: string, what: string) => {
    if (XMLValidator.validate(changed) !== true && parseFoxml(changed) !== undefined) weaker.push(what)
  }
  for (let i = 0; i < text.length; i++) check(text.slice(0, i) + text.slice(i + 1), `without character ${i}`)
  for (const c of ['<', '&', '"']) for (let i = 0; i < text.length; i += 5) check(text.slice(0, i) + c + text.slice(i), `${c} at ${i}`)
  t.same(weaker, [], 'nothing malformed gets through')
})
