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

// JSON is written by hand: entities are flat records of strings and booleans,
// and concatenation is about twice as fast as JSON.stringify on fresh objects.
// Strings that need escaping (quotes, backslashes, control characters,
// surrogates) go through JSON.stringify, so the output is byte for byte the same.
const JSON_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/
const quotedKeys = new Map<string, string>()

function jsonString(text: string): string {
  return JSON_ESCAPE.test(text) ? JSON.stringify(text) : '"' + text + '"'
}

function jsonKey(key: string): string {
  let quoted = quotedKeys.get(key)
  if (quoted === undefined) {
    quoted = JSON.stringify(key) + ':'
    // Keys are the resources' field names: a small fixed set.
    if (quotedKeys.size < 256) quotedKeys.set(key, quoted)
  }
  return quoted
}

function jsonFields(fields: Fields): string {
  let out = '{'
  for (const key in fields) {
    const value = fields[key]
    const text = typeof value === 'string' ? jsonString(value) : typeof value === 'boolean' ? (value ? 'true' : 'false') : JSON.stringify(value)
    // Like JSON.stringify, skip what JSON cannot carry (undefined).
    if (text === undefined) continue
    out += (out.length === 1 ? '' : ',') + jsonKey(key) + text
  }
  return out + '}'
}

/** Serialize a representation as JSON text. */
export function toJson(body: Representation): string {
  if (body.kind === 'entity') return '{' + jsonKey(body.root) + jsonFields(body.fields) + '}'
  const items = body.items
  let out = '{' + jsonKey(body.plural) + '['
  for (let i = 0; i < items.length; i++) out += (i === 0 ? '' : ',') + jsonFields(items[i]!)
  return out + ']}'
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
