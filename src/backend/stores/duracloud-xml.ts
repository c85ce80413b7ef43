/**
 * The XML DuraStore speaks (spec §5.7.3): the item list of a space listing,
 * and the `chunksManifest` (schema version 0.2) of content stored in chunks.
 * Parsed without DTDs or entities beyond XML's own [D46], after the markup
 * guard has checked the text is well-formed.
 */
import { createRequire } from 'node:module'
import { decodeEntities, LITERAL_XML } from './foxml.js'
import { checkMarkup } from './xml-guard.js'

const { XMLParser } = createRequire(import.meta.url)('fast-xml-parser') as typeof import('fast-xml-parser')

type Item = Record<string, unknown>

const orderedParser = new XMLParser(LITERAL_XML)

/** The root element of a well-formed document (DOCTYPE refused) [D46]. */
function rootOf(text: string): Item | undefined {
  const rootName = checkMarkup(text)
  if (rootName === undefined) return undefined
  let doc: unknown
  try {
    doc = orderedParser.parse(text)
  } catch {
    return undefined
  }
  return Array.isArray(doc) ? (doc as Item[]).find((item) => nameOf(item) === rootName) : undefined
}

function nameOf(item: Item): string | undefined {
  for (const key in item) if (key !== ':@' && key !== '#text') return key
  return undefined
}

/** The element's name without its namespace prefix. */
function localName(item: Item): string | undefined {
  const name = nameOf(item)
  return name === undefined ? undefined : name.slice(name.indexOf(':') + 1)
}

function elementsOf(item: Item): Item[] {
  const name = nameOf(item)
  const children = name === undefined ? undefined : item[name]
  return Array.isArray(children) ? (children as Item[]).filter((c) => nameOf(c) !== undefined) : []
}

function textOf(item: Item): string {
  const name = nameOf(item)
  const children = name === undefined ? undefined : item[name]
  let text = ''
  if (Array.isArray(children)) {
    for (const child of children as Item[]) {
      const t = child['#text']
      if (typeof t === 'string') text += t
    }
  }
  return decodeEntities(text)
}

function attrOf(item: Item, name: string): string | undefined {
  const attrs = item[':@']
  if (typeof attrs !== 'object' || attrs === null || !Object.hasOwn(attrs, name)) return undefined
  const value = (attrs as Record<string, unknown>)[name]
  return typeof value === 'string' ? decodeEntities(value) : undefined
}

function child(item: Item, name: string): Item | undefined {
  return elementsOf(item).find((c) => localName(c) === name)
}

/**
 * The item ids of a DuraStore space listing (the text of each child element
 * of the root, e.g. `<space id="x"><item>demo:1</item></space>`);
 * `undefined` when it is not well-formed XML.
 *
 * @example
 * parseItemList('<space id="s"><item>demo:1</item></space>') // ['demo:1']
 */
export function parseItemList(text: string): string[] | undefined {
  const root = rootOf(text)
  // Trimmed: a pretty-printed listing puts line breaks around each id.
  return root === undefined ? undefined : elementsOf(root).map((item) => textOf(item).trim())
}

export interface ManifestChunk {
  id: string
  index: number
  size: number
  md5: string
}

/**
 * The chunks of a DuraCloud `chunksManifest` in index order, or a phrase
 * saying what is wrong with it.
 *
 * @example
 * parseChunksManifest(xml) // [{ id: 'a.dura-chunk-0000', index: 0, size: 1073741824, md5: '…' }, …]
 */
export function parseChunksManifest(text: string): ManifestChunk[] | string {
  const root = rootOf(text)
  if (root === undefined) return 'is not well-formed XML'
  if (localName(root) !== 'chunksManifest') return 'is not a chunksManifest document'
  const list = child(root, 'chunks')
  if (list === undefined) return 'lists no chunks'
  const chunks: ManifestChunk[] = []
  for (const c of elementsOf(list)) {
    if (localName(c) !== 'chunk') continue
    const id = attrOf(c, 'chunkId')
    const index = Number(attrOf(c, 'index'))
    const sizeText = child(c, 'byteSize') === undefined ? '' : textOf(child(c, 'byteSize')!).trim()
    const size = Number(sizeText)
    if (id === undefined || id === '' || !Number.isSafeInteger(index) || index < 0 || sizeText === '' || !Number.isSafeInteger(size) || size < 0) {
      return 'has a chunk entry without a valid chunkId, index or byteSize'
    }
    const md5 = child(c, 'md5') === undefined ? '' : textOf(child(c, 'md5')!).trim()
    chunks.push({ id, index, size, md5 })
  }
  if (chunks.length === 0) return 'lists no chunks'
  chunks.sort((a, b) => a.index - b.index)
  for (let i = 0; i < chunks.length; i++) if (chunks[i]!.index !== i) return `does not list chunk index ${i} exactly once`
  return chunks
}

function escapeXml(value: string): string {
  return value.replace(/[&<>"]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&quot;'))
}

/** A `chunksManifest` (schema version 0.2) as DuraCloud's own chunking tools write it. */
export function chunksManifestXml(contentId: string, mimeType: string, size: number, md5: string, chunks: Array<{ id: string; index: number; size: number; md5: string }>): string {
  let out = '<?xml version="1.0" encoding="UTF-8"?>\n<dur:chunksManifest xmlns:dur="duracloud.org">\n'
  out += '  <header schemaVersion="0.2">\n'
  out += `    <sourceContent contentId="${escapeXml(contentId)}">\n`
  out += `      <mimetype>${escapeXml(mimeType)}</mimetype>\n      <byteSize>${size}</byteSize>\n      <md5>${md5}</md5>\n`
  out += '    </sourceContent>\n  </header>\n  <chunks>\n'
  for (const c of chunks) {
    out += `    <chunk chunkId="${escapeXml(c.id)}" index="${c.index}">\n      <byteSize>${c.size}</byteSize>\n      <md5>${c.md5}</md5>\n    </chunk>\n`
  }
  return out + '  </chunks>\n</dur:chunksManifest>\n'
}
