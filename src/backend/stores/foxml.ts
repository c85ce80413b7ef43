/**
 * FOXML 1.1 (Fedora Object XML) read and write.
 *
 * Reading uses fast-xml-parser with DOCTYPE refused, entities off and every
 * value kept as a string; the five predefined XML entities and character
 * references are decoded here, nothing else. Inline XML (`xmlContent`) is
 * kept byte-for-byte as it appeared between its tags, together with the
 * namespace bindings that were in scope there, so it round-trips faithfully.
 *
 * Writing is a small serializer (the model is flat and the inline XML must be
 * inserted verbatim, which a generic builder would re-escape).
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser'

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

type Node = Record<string, unknown>

const CONTROL_GROUPS = new Set<string>(['X', 'M', 'E', 'R'])
const DOCTYPE = /<!DOCTYPE/i
// The root element's name, after an optional BOM, XML declaration, PIs and comments.
const ROOT_TAG = /^\uFEFF?(?:\s|<\?[\s\S]*?\?>|<!--[\s\S]*?-->)*<([A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?)/

// One parser per FOXML prefix (the stop node must name `xmlContent` with the
// document's prefix); in practice only `foxml:` and unprefixed occur.
const parsers = new Map<string, XMLParser>()

function parserFor(prefix: string): XMLParser {
  let parser = parsers.get(prefix)
  if (parser === undefined) {
    parser = new XMLParser({
      ignoreAttributes: false,
      attributeNamePrefix: '',
      attributesGroupName: '@',
      parseTagValue: false,
      parseAttributeValue: false,
      processEntities: false,
      htmlEntities: false,
      trimValues: false,
      stopNodes: [`..${prefix}xmlContent`],
    })
    if (parsers.size < 16) parsers.set(prefix, parser)
  }
  return parser
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
  if (typeof text !== 'string' || DOCTYPE.test(text)) return undefined
  const rootMatch = ROOT_TAG.exec(text)
  if (rootMatch === null) return undefined
  const rootName = rootMatch[1]!
  const colon = rootName.indexOf(':')
  const prefix = colon === -1 ? '' : rootName.slice(0, colon + 1)
  if (rootName.slice(prefix.length) !== 'digitalObject') return undefined
  if (XMLValidator.validate(text) !== true) return undefined

  let doc: Node
  try {
    doc = parserFor(prefix).parse(text) as Node
  } catch {
    return undefined
  }
  const root = doc[rootName]
  if (!isNode(root)) return undefined
  const rootAttrs = attrs(root)
  const pid = rootAttrs.PID
  if (pid === undefined || pid === '') return undefined
  const rootScope = declarations(rootAttrs, {})

  const properties: FoxmlProperty[] = []
  const extProperties: FoxmlProperty[] = []
  for (const props of children(root, prefix + 'objectProperties')) {
    if (!readProperties(children(props, prefix + 'property'), properties)) return undefined
    if (!readProperties(children(props, prefix + 'extproperty'), extProperties)) return undefined
  }

  const datastreams: FoxmlDatastream[] = []
  for (const dsNode of children(root, prefix + 'datastream')) {
    const a = attrs(dsNode)
    const id = a.ID
    const controlGroup = a.CONTROL_GROUP
    if (id === undefined || id === '' || controlGroup === undefined || !CONTROL_GROUPS.has(controlGroup)) return undefined
    const ds: FoxmlDatastream = { id, controlGroup: controlGroup as ControlGroup, versions: [] }
    if (a.STATE !== undefined) ds.state = a.STATE
    if (a.VERSIONABLE !== undefined) ds.versionable = a.VERSIONABLE
    if (a.FEDORA_URI !== undefined) ds.fedoraUri = a.FEDORA_URI
    const dsScope = declarations(a, rootScope)
    for (const vNode of children(dsNode, prefix + 'datastreamVersion')) {
      const version = readVersion(vNode, prefix, dsScope)
      if (version === undefined) return undefined
      ds.versions.push(version)
    }
    datastreams.push(ds)
  }

  const obj: FoxmlObject = { pid, properties, extProperties, datastreams }
  if (rootAttrs.FEDORA_URI !== undefined) obj.fedoraUri = rootAttrs.FEDORA_URI
  return obj
}

function readProperties(nodes: Node[], into: FoxmlProperty[]): boolean {
  for (const node of nodes) {
    const a = attrs(node)
    if (a.NAME === undefined) return false
    into.push({ name: a.NAME, value: a.VALUE ?? '' })
  }
  return true
}

function readVersion(node: Node, prefix: string, scope: Record<string, string>): FoxmlDatastreamVersion | undefined {
  const a = attrs(node)
  if (a.ID === undefined || a.ID === '') return undefined
  const v: FoxmlDatastreamVersion = { id: a.ID }
  if (a.LABEL !== undefined) v.label = a.LABEL
  if (a.CREATED !== undefined) v.created = a.CREATED
  if (a.MIMETYPE !== undefined) v.mimeType = a.MIMETYPE
  if (a.FORMAT_URI !== undefined) v.formatUri = a.FORMAT_URI
  if (a.ALT_IDS !== undefined) v.altIds = a.ALT_IDS
  if (a.SIZE !== undefined) v.size = a.SIZE
  const digest = children(node, prefix + 'contentDigest')[0]
  if (digest !== undefined) {
    const d = attrs(digest)
    v.contentDigest = { type: d.TYPE ?? '', digest: d.DIGEST ?? '' }
  }
  const location = children(node, prefix + 'contentLocation')[0]
  if (location !== undefined) {
    const l = attrs(location)
    if (l.REF === undefined) return undefined
    v.contentLocation = { type: l.TYPE ?? 'URL', ref: l.REF }
  }
  const xml = node[prefix + 'xmlContent']
  if (xml !== undefined) {
    const first = Array.isArray(xml) ? xml[0] : xml
    // A stop node comes back as its raw text, or `{ '#text', '@' }` with attributes.
    if (typeof first === 'string') {
      v.xmlContent = first
      v.xmlNamespaces = { ...scope }
    } else if (isNode(first)) {
      const raw = first['#text']
      v.xmlContent = typeof raw === 'string' ? raw : ''
      v.xmlNamespaces = declarations(attrs(first), scope)
    } else {
      return undefined
    }
  }
  const binary = node[prefix + 'binaryContent']
  if (binary !== undefined) {
    const first = Array.isArray(binary) ? binary[0] : binary
    const raw = typeof first === 'string' ? first : isNode(first) ? first['#text'] : undefined
    v.binaryContent = typeof raw === 'string' ? decodeEntities(raw) : ''
  }
  return v
}

function isNode(value: unknown): value is Node {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

const NO_ATTRS: Record<string, string> = Object.freeze({}) as Record<string, string>

/** The element's attributes with entity references decoded. */
function attrs(node: Node): Record<string, string> {
  const group = node['@']
  if (!isNode(group)) return NO_ATTRS
  const out: Record<string, string> = Object.create(null) as Record<string, string>
  for (const key of Object.keys(group)) {
    const value = group[key]
    if (typeof value === 'string') out[key] = decodeEntities(value)
  }
  return out
}

/** Child elements named `name` as an array (an empty element parses as `''`). */
function children(node: Node, name: string): Node[] {
  const value = node[name]
  if (value === undefined) return []
  const list = Array.isArray(value) ? value : [value]
  return list.map((item) => (isNode(item) ? item : {}))
}

/** `scope` extended by the `xmlns` / `xmlns:p` attributes in `a`. */
function declarations(a: Record<string, string>, scope: Record<string, string>): Record<string, string> {
  let out: Record<string, string> | undefined
  for (const key of Object.keys(a)) {
    if (key === 'xmlns' || key.startsWith('xmlns:')) {
      out ??= { ...scope }
      out[key === 'xmlns' ? '' : key.slice(6)] = a[key]!
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

/**
 * Serialize a {@link FoxmlObject} as FOXML 1.1 (UTF-8, `foxml:` prefix).
 * Inline XML is written verbatim, with the namespace bindings it had in scope
 * declared on its `xmlContent` element when the root does not already.
 *
 * @example
 * await writeFile(path, serializeFoxml(obj), 'utf8')
 */
export function serializeFoxml(obj: FoxmlObject): string {
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
    for (const v of ds.versions) out += serializeVersion(v)
    out += '  </foxml:datastream>\n'
  }
  return out + '</foxml:digitalObject>\n'
}

function serializeVersion(v: FoxmlDatastreamVersion): string {
  let out = `    <foxml:datastreamVersion${attr('ID', v.id)}${attr('LABEL', v.label)}${attr('CREATED', v.created)}${attr('MIMETYPE', v.mimeType)}${attr('FORMAT_URI', v.formatUri)}${attr('ALT_IDS', v.altIds)}${attr('SIZE', v.size)}>\n`
  if (v.contentDigest !== undefined) {
    out += `      <foxml:contentDigest${attr('TYPE', v.contentDigest.type)}${attr('DIGEST', v.contentDigest.digest)}/>\n`
  }
  if (v.xmlContent !== undefined) {
    out += `      <foxml:xmlContent${namespaceAttrs(v.xmlNamespaces)}>${v.xmlContent}</foxml:xmlContent>\n`
  }
  if (v.contentLocation !== undefined) {
    out += `      <foxml:contentLocation${attr('TYPE', v.contentLocation.type)}${attr('REF', v.contentLocation.ref)}/>\n`
  }
  if (v.binaryContent !== undefined) {
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
