/**
 * JSON and XML representations of CloudSync entities (spec §3.1).
 *
 * Fields are emitted in the order given — callers build them in ascending
 * alphabetical order, as the original service did — and absent (`undefined`)
 * values are omitted. Strings stay strings in JSON [D21].
 */
import { isXmlType } from './media-types.js'

export type FieldValue = string | boolean | undefined
export type Fields = Record<string, FieldValue>

export interface EntityBody {
  kind: 'entity'
  root: string
  fields: Fields
}

export interface ListBody {
  kind: 'list'
  plural: string
  singular: string
  items: Fields[]
}

export type Representation = EntityBody | ListBody

const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'

// Characters XML 1.0 cannot carry even as references become U+FFFD.
const XML_INVALID = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ud800-\udfff\ufffe\uffff]/g
const XML_SPECIAL = /[<>&]/g
const XML_ESCAPES: Record<string, string> = { '<': '&lt;', '>': '&gt;', '&': '&amp;' }

function escapeXmlText(text: string): string {
  let out = text
  if (XML_SPECIAL.test(out)) {
    XML_SPECIAL.lastIndex = 0
    out = out.replace(XML_SPECIAL, (c) => XML_ESCAPES[c]!)
  }
  XML_SPECIAL.lastIndex = 0
  if (XML_INVALID.test(out)) {
    XML_INVALID.lastIndex = 0
    // Keep well-formed surrogate pairs; replace only lone surrogates and control characters.
    out = out.replace(/[\ud800-\udbff][\udc00-\udfff]|[\u0000-\u0008\u000b\u000c\u000e-\u001f\ud800-\udfff\ufffe\uffff]/g,
      (m) => (m.length === 2 ? m : '\ufffd'))
  }
  XML_INVALID.lastIndex = 0
  return out
}

function xmlFields(fields: Fields): string {
  let out = ''
  for (const key in fields) {
    const value = fields[key]
    if (value === undefined) continue
    out += `<${key}>${typeof value === 'boolean' ? String(value) : escapeXmlText(value)}</${key}>`
  }
  return out
}

function jsonFields(fields: Fields): Fields {
  let clean = true
  for (const key in fields) if (fields[key] === undefined) { clean = false; break }
  if (clean) return fields
  const out: Fields = {}
  for (const key in fields) if (fields[key] !== undefined) out[key] = fields[key]
  return out
}

/** Serialize a representation as JSON text. */
export function toJson(body: Representation): string {
  if (body.kind === 'entity') return JSON.stringify({ [body.root]: jsonFields(body.fields) })
  return JSON.stringify({ [body.plural]: body.items.map(jsonFields) })
}

/** Serialize a representation as an XML document. */
export function toXml(body: Representation): string {
  if (body.kind === 'entity') return `${XML_DECLARATION}<${body.root}>${xmlFields(body.fields)}</${body.root}>`
  if (body.items.length === 0) return `${XML_DECLARATION}<${body.plural}/>`
  let out = `${XML_DECLARATION}<${body.plural}>`
  for (const item of body.items) out += `<${body.singular}>${xmlFields(item)}</${body.singular}>`
  return `${out}</${body.plural}>`
}

/** Serialize for the negotiated media type. */
export function serialize(body: Representation, mediaType: string): string {
  return isXmlType(mediaType) ? toXml(body) : toJson(body)
}
