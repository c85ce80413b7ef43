/**
 * FOXML 1.1 (Fedora Object XML) read and write.
 *
 * Reading uses fast-xml-parser with DOCTYPE refused, entities off and every
 * value kept as a string; the five predefined XML entities and character
 * references are decoded here, nothing else. Inline XML (`xmlContent`) is
 * kept byte-for-byte as it appeared between its tags, together with the
 * namespace bindings that were in scope there, so it round-trips faithfully.
 * The parser takes mismatched and missing end tags in its stride, so the
 * text first passes `checkMarkup` (xml-guard.ts): a file cut short never
 * reads as a smaller object.
 *
 * Writing is a small serializer (the model is flat and the inline XML must be
 * inserted verbatim, which a generic builder would re-escape).
 */
import { createRequire } from 'node:module'
import { checkMarkup } from './xml-guard.js'

// The package's single-file CommonJS build: it loads in a fifth of the time
// of its tree of ES modules, which every copy worker thread pays at start.
const { XMLParser } = createRequire(import.meta.url)('fast-xml-parser') as typeof import('fast-xml-parser')
type XMLParser = import('fast-xml-parser').XMLParser

export const FOXML_NAMESPACE = 'info:fedora/fedora-system:def/foxml#'
const XSI_NAMESPACE = 'http://www.w3.org/2001/XMLSchema-instance'
const FOXML_SCHEMA_LOCATION = 'info:fedora/fedora-system:def/foxml# http://www.fedora.info/definitions/1/0/foxml1-1.xsd'

/** `X` inline XML, `M` managed content, `E` external reference, `R` redirect. */
export type ControlGroup = 'X' | 'M' | 'E' | 'R'

export interface FoxmlProperty {
  name: string
  value: string
}

export interface FoxmlDatastreamVersion {
  /** `ID`, e.g. `DC.0`. */
  id: string
  label?: string
  /** `CREATED`, an xs:dateTime as written in the file. */
  created?: string
  mimeType?: string
  formatUri?: string
  altIds?: string
  /** `SIZE`, as written (a decimal string). */
  size?: string
  contentDigest?: { type: string; digest: string }
  /** Where the content lives (`E`, `R`, and `M` in some exports). */
  contentLocation?: { type: string; ref: string }
  /** Inline XML of an `X` datastream, verbatim (the text between the tags). */
  xmlContent?: string
  /** Namespace bindings in scope at `xmlContent` (prefix → URI, `''` = default). */
  xmlNamespaces?: Record<string, string>
  /** Inline base64 content of an `M` datastream, as written. */
  binaryContent?: string
}

export interface FoxmlDatastream {
  id: string
  controlGroup: ControlGroup
  /** `A`, `I` or `D`. */
  state?: string
  /** `true` / `false`, as written. */
  versionable?: string
  fedoraUri?: string
  versions: FoxmlDatastreamVersion[]
}

export interface FoxmlObject {
  pid: string
  fedoraUri?: string
  /** `objectProperties/property` in document order. */
  properties: FoxmlProperty[]
  /** `objectProperties/extproperty` in document order. */
  extProperties: FoxmlProperty[]
  datastreams: FoxmlDatastream[]
}

/** An element of the parser's ordered output: `{ [name]: children, ':@'?: attributes }`, or `{ '#text': text }`. */
type Item = Record<string, unknown>
type Attrs = Record<string, unknown>
type Scope = Readonly<Record<string, string>>

const CONTROL_GROUPS = new Set<string>(['X', 'M', 'E', 'R'])
const TEXT = '#text'
const ATTRIBUTES = ':@'
const NO_ATTRS: Attrs = Object.freeze(Object.create(null) as Attrs)
const EMPTY_SCOPE: Scope = Object.freeze({})

/** A parser and the element names for one FOXML prefix. */
interface Reader {
  parser: XMLParser
  names: Record<(typeof ELEMENTS)[number], string>
}

const ELEMENTS = ['objectProperties', 'property', 'extproperty', 'datastream', 'datastreamVersion', 'contentDigest', 'contentLocation', 'xmlContent', 'binaryContent'] as const

// One reader per FOXML prefix (the stop node must name `xmlContent` with the
// document's prefix); in practice only `foxml:` and unprefixed occur.
/**
 * fast-xml-parser options that keep a document as written: elements in
 * order, attributes by their plain names, text and values untouched (no type
 * guessing, trimming or entity expansion; callers decode XML's own entities).
 */
export const LITERAL_XML = {
  // The ordered form as it comes out of the parser, not regrouped by name afterwards.
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  processEntities: false,
  htmlEntities: false,
  trimValues: false,
} as const

const readers = new Map<string, Reader>()

function readerFor(prefix: string): Reader {
  let reader = readers.get(prefix)
  if (reader === undefined) {
    const parser = new XMLParser({
      ...LITERAL_XML,
      stopNodes: [`..${prefix}xmlContent`],
      // Callbacks get the path matcher itself: no path string built per element.
      jPath: false,
    })
    const names = Object.fromEntries(ELEMENTS.map((name) => [name, prefix + name])) as Reader['names']
    reader = { parser, names }
    if (readers.size < 16) readers.set(prefix, reader)
  }
  return reader
}

/**
 * Parse FOXML 1.1 text into a {@link FoxmlObject}; `undefined` when the text
 * is not well-formed, carries a DOCTYPE, or is not a FOXML digital object
 * (missing `PID`, a datastream without `ID` or with an unknown control group,
 * a version without `ID`).
 *
 * @example
 * const obj = parseFoxml(await readFile('demo%3A1', 'utf8'))
 * if (obj) console.log(obj.pid, obj.datastreams.map((d) => d.id))
 */
export function parseFoxml(text: string): FoxmlObject | undefined {
  if (typeof text !== 'string') return undefined
  // Well-formed (DOCTYPE refused, complete to the root's end tag), and the root's name.
  const rootName = checkMarkup(text)
  if (rootName === undefined) return undefined
  const colon = rootName.indexOf(':')
  const prefix = colon === -1 ? '' : rootName.slice(0, colon + 1)
  if (rootName.slice(prefix.length) !== 'digitalObject') return undefined

  const { parser, names } = readerFor(prefix)
  let doc: unknown
  try {
    doc = parser.parse(text)
  } catch {
    return undefined
  }
  const root = Array.isArray(doc) ? (doc as Item[]).find((item) => nameOf(item) === rootName) : undefined
  if (root === undefined) return undefined
  const rootAttrs = attrsOf(root)
  const pid = getAttr(rootAttrs, 'PID')
  if (pid === undefined || pid === '') return undefined
  const rootScope = declarations(rootAttrs, EMPTY_SCOPE)

  const obj: FoxmlObject = { pid, properties: [], extProperties: [], datastreams: [] }
  for (const child of childrenOf(root, rootName)) {
    const name = nameOf(child)
    if (name === names.objectProperties) {
      for (const p of childrenOf(child, name)) {
        const kind = nameOf(p)
        const into = kind === names.property ? obj.properties : kind === names.extproperty ? obj.extProperties : undefined
        if (into === undefined) continue
        const a = attrsOf(p)
        const propertyName = getAttr(a, 'NAME')
        if (propertyName === undefined) return undefined
        into.push({ name: propertyName, value: getAttr(a, 'VALUE') ?? '' })
      }
    } else if (name === names.datastream) {
      const ds = readDatastream(child, names, rootScope)
      if (ds === undefined) return undefined
      obj.datastreams.push(ds)
    }
  }
  const fedoraUri = getAttr(rootAttrs, 'FEDORA_URI')
  if (fedoraUri !== undefined) obj.fedoraUri = fedoraUri
  return obj
}

function readDatastream(item: Item, names: Reader['names'], scope: Scope): FoxmlDatastream | undefined {
  const a = attrsOf(item)
  const id = getAttr(a, 'ID')
  const controlGroup = getAttr(a, 'CONTROL_GROUP')
  if (id === undefined || id === '' || controlGroup === undefined || !CONTROL_GROUPS.has(controlGroup)) return undefined
  const ds: FoxmlDatastream = { id, controlGroup: controlGroup as ControlGroup, versions: [] }
  copyOptional(a, ds, DATASTREAM_ATTRS)
  const dsScope = declarations(a, scope)
  for (const child of childrenOf(item, names.datastream)) {
    if (nameOf(child) !== names.datastreamVersion) continue
    const version = readVersion(child, names, dsScope)
    if (version === undefined) return undefined
    ds.versions.push(version)
  }
  return ds
}

function readVersion(item: Item, names: Reader['names'], scope: Scope): FoxmlDatastreamVersion | undefined {
  const a = attrsOf(item)
  const id = getAttr(a, 'ID')
  if (id === undefined || id === '') return undefined
  const v: FoxmlDatastreamVersion = { id }
  copyOptional(a, v, VERSION_ATTRS)
  // The first of each kind counts.
  let digest: Item | undefined
  let location: Item | undefined
  let xml: Item | undefined
  let binary: Item | undefined
  for (const child of childrenOf(item, names.datastreamVersion)) {
    const name = nameOf(child)
    if (name === names.contentDigest) digest ??= child
    else if (name === names.contentLocation) location ??= child
    else if (name === names.xmlContent) xml ??= child
    else if (name === names.binaryContent) binary ??= child
  }
  if (digest !== undefined) {
    const d = attrsOf(digest)
    v.contentDigest = { type: getAttr(d, 'TYPE') ?? '', digest: getAttr(d, 'DIGEST') ?? '' }
  }
  if (location !== undefined) {
    const l = attrsOf(location)
    const ref = getAttr(l, 'REF')
    if (ref === undefined) return undefined
    v.contentLocation = { type: getAttr(l, 'TYPE') ?? 'URL', ref }
  }
  if (xml !== undefined) {
    // A stop node: its raw text, verbatim.
    v.xmlContent = textOf(xml, names.xmlContent)
    v.xmlNamespaces = { ...declarations(attrsOf(xml), scope) }
  }
  if (binary !== undefined) v.binaryContent = decodeEntities(textOf(binary, names.binaryContent))
  return v
}

/** The element's name (its first key that is not the attributes). */
function nameOf(item: Item): string | undefined {
  for (const key in item) if (key !== ATTRIBUTES) return key
  return undefined
}

function childrenOf(item: Item, name: string): Item[] {
  const children = item[name]
  return Array.isArray(children) ? (children as Item[]) : []
}

/** The element's text (its text children joined). */
function textOf(item: Item, name: string): string {
  let text = ''
  for (const child of childrenOf(item, name)) {
    const t = child[TEXT]
    if (typeof t === 'string') text += t
  }
  return text
}

/** The element's attributes as the parser left them (entity references not yet decoded). */
function attrsOf(item: Item): Attrs {
  const a = item[ATTRIBUTES]
  return typeof a === 'object' && a !== null ? (a as Attrs) : NO_ATTRS
}

/** Optional string attributes and the fields they fill. */
const DATASTREAM_ATTRS = [['STATE', 'state'], ['VERSIONABLE', 'versionable'], ['FEDORA_URI', 'fedoraUri']] as const
const VERSION_ATTRS = [
  ['LABEL', 'label'],
  ['CREATED', 'created'],
  ['MIMETYPE', 'mimeType'],
  ['FORMAT_URI', 'formatUri'],
  ['ALT_IDS', 'altIds'],
  ['SIZE', 'size'],
] as const

/** Set each field whose attribute is present (absent attributes leave the field out). */
function copyOptional<T extends object>(a: Attrs, into: T, fields: ReadonlyArray<readonly [string, keyof T & string]>): void {
  for (const [attribute, field] of fields) {
    const value = getAttr(a, attribute)
    if (value !== undefined) (into as Record<string, string>)[field] = value
  }
}

/** One attribute with entity references decoded; own properties only. */
function getAttr(a: Attrs, name: string): string | undefined {
  if (!Object.hasOwn(a, name)) return undefined
  const value = a[name]
  return typeof value === 'string' ? decodeEntities(value) : undefined
}

/** `scope` extended by the `xmlns` / `xmlns:p` attributes in `a` (`scope` itself when there are none). */
function declarations(a: Attrs, scope: Scope): Scope {
  let out: Record<string, string> | undefined
  for (const key of Object.keys(a)) {
    if (key === 'xmlns' || key.startsWith('xmlns:')) {
      const value = getAttr(a, key)
      if (value === undefined) continue
      out ??= { ...scope }
      out[key === 'xmlns' ? '' : key.slice(6)] = value
    }
  }
  return out ?? scope
}

const ENTITY = /&(?:#(\d+)|#[xX]([0-9a-fA-F]+)|(amp|lt|gt|quot|apos));/g
const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }

/**
 * Decode the predefined XML entities and character references; anything else
 * (there are no DTD entities) is left as written.
 *
 * @example
 * decodeEntities('A &amp; B &#233;') // 'A & B é'
 */
export function decodeEntities(value: string): string {
  if (!value.includes('&')) return value
  return value.replace(ENTITY, (whole, dec: string | undefined, hex: string | undefined, name: string | undefined) => {
    if (name !== undefined) return NAMED[name]!
    const cp = dec !== undefined ? Number.parseInt(dec, 10) : Number.parseInt(hex!, 16)
    return cp <= 0x10ffff ? String.fromCodePoint(cp) : whole
  })
}

const ATTR_SPECIAL = /[&<>"\t\n\r]/
const ATTR_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\t': '&#9;', '\n': '&#10;', '\r': '&#13;' }
const ATTR_SPECIAL_ALL = /[&<>"\t\n\r]/g

function escapeAttr(value: string): string {
  return ATTR_SPECIAL.test(value) ? value.replace(ATTR_SPECIAL_ALL, (c) => ATTR_ESCAPES[c]!) : value
}

function attr(name: string, value: string | undefined): string {
  return value === undefined ? '' : ` ${name}="${escapeAttr(value)}"`
}

/** Options of {@link serializeFoxml}. */
export interface SerializeFoxmlOptions {
  /**
   * Record the content of every Managed (`M`) version at this location
   * instead of the model's (inline base64 content is then left out), e.g.
   * where a store keeps that content itself.
   */
  managedLocation?: (dsId: string, versionId: string) => { type: string; ref: string }
}

/**
 * Serialize a {@link FoxmlObject} as FOXML 1.1 (UTF-8, `foxml:` prefix).
 * Inline XML is written verbatim, with the namespace bindings it had in scope
 * declared on its `xmlContent` element when the root does not already.
 *
 * @example
 * await writeFile(path, serializeFoxml(obj), 'utf8')
 * // Managed content kept next to the object file:
 * serializeFoxml(obj, { managedLocation: (ds, v) => ({ type: 'INTERNAL_ID', ref: `${obj.pid}+${ds}+${v}` }) })
 */
export function serializeFoxml(obj: FoxmlObject, options?: SerializeFoxmlOptions): string {
  const managedLocation = options?.managedLocation
  let out = '<?xml version="1.0" encoding="UTF-8"?>\n'
  out += `<foxml:digitalObject VERSION="1.1"${attr('PID', obj.pid)}${attr('FEDORA_URI', obj.fedoraUri)}`
  out += ` xmlns:foxml="${FOXML_NAMESPACE}" xmlns:xsi="${XSI_NAMESPACE}" xsi:schemaLocation="${FOXML_SCHEMA_LOCATION}">\n`
  if (obj.properties.length > 0 || obj.extProperties.length > 0) {
    out += '  <foxml:objectProperties>\n'
    for (const p of obj.properties) out += `    <foxml:property${attr('NAME', p.name)}${attr('VALUE', p.value)}/>\n`
    for (const p of obj.extProperties) out += `    <foxml:extproperty${attr('NAME', p.name)}${attr('VALUE', p.value)}/>\n`
    out += '  </foxml:objectProperties>\n'
  }
  for (const ds of obj.datastreams) {
    out += `  <foxml:datastream${attr('ID', ds.id)}${attr('STATE', ds.state)}${attr('CONTROL_GROUP', ds.controlGroup)}${attr('VERSIONABLE', ds.versionable)}${attr('FEDORA_URI', ds.fedoraUri)}>\n`
    const relocate = ds.controlGroup === 'M' ? managedLocation : undefined
    for (const v of ds.versions) out += serializeVersion(v, relocate?.(ds.id, v.id))
    out += '  </foxml:datastream>\n'
  }
  return out + '</foxml:digitalObject>\n'
}

/** One version; with `location`, that is where its content is recorded (and no inline content). */
function serializeVersion(v: FoxmlDatastreamVersion, location?: { type: string; ref: string }): string {
  let out = `    <foxml:datastreamVersion${attr('ID', v.id)}${attr('LABEL', v.label)}${attr('CREATED', v.created)}${attr('MIMETYPE', v.mimeType)}${attr('FORMAT_URI', v.formatUri)}${attr('ALT_IDS', v.altIds)}${attr('SIZE', v.size)}>\n`
  if (v.contentDigest !== undefined) {
    out += `      <foxml:contentDigest${attr('TYPE', v.contentDigest.type)}${attr('DIGEST', v.contentDigest.digest)}/>\n`
  }
  if (v.xmlContent !== undefined) {
    out += `      <foxml:xmlContent${namespaceAttrs(v.xmlNamespaces)}>${v.xmlContent}</foxml:xmlContent>\n`
  }
  const contentLocation = location ?? v.contentLocation
  if (contentLocation !== undefined) {
    out += `      <foxml:contentLocation${attr('TYPE', contentLocation.type)}${attr('REF', contentLocation.ref)}/>\n`
  }
  if (v.binaryContent !== undefined && location === undefined) {
    out += `      <foxml:binaryContent>${escapeAttr(v.binaryContent)}</foxml:binaryContent>\n`
  }
  return out + '    </foxml:datastreamVersion>\n'
}

/** Declarations for bindings the written root does not already provide. */
function namespaceAttrs(scope: Record<string, string> | undefined): string {
  if (scope === undefined) return ''
  let out = ''
  for (const prefix of Object.keys(scope)) {
    const uri = scope[prefix]!
    if ((prefix === 'foxml' && uri === FOXML_NAMESPACE) || (prefix === 'xsi' && uri === XSI_NAMESPACE)) continue
    out += attr(prefix === '' ? 'xmlns' : `xmlns:${prefix}`, uri)
  }
  return out
}

/**
 * Whether the object has at least one Managed (`M`) datastream.
 *
 * @example
 * if (!includeManaged && hasManagedDatastream(obj)) skip()
 */
export function hasManagedDatastream(obj: FoxmlObject): boolean {
  return obj.datastreams.some((ds) => ds.controlGroup === 'M')
}

/**
 * A copy of `obj` in which External (`E`, when `external`) and Redirect (`R`,
 * when `redirect`) datastreams become Managed: the content of each version
 * must then be supplied when the object is written. Their content locations
 * are dropped (the destination store records where it put the content).
 * Returns `obj` itself when nothing changes.
 *
 * @example
 * const out = convertToManaged(obj, { external: true, redirect: false })
 */
export function convertToManaged(obj: FoxmlObject, convert: { external: boolean; redirect: boolean }): FoxmlObject {
  const selected = (ds: FoxmlDatastream) => (ds.controlGroup === 'E' && convert.external) || (ds.controlGroup === 'R' && convert.redirect)
  if (!obj.datastreams.some(selected)) return obj
  return {
    ...obj,
    datastreams: obj.datastreams.map((ds) => {
      if (!selected(ds)) return ds
      return {
        ...ds,
        controlGroup: 'M' as const,
        versions: ds.versions.map((v) => {
          const { contentLocation: _dropped, ...rest } = v
          return rest
        }),
      }
    }),
  }
}
