/**
 * A fast check that XML markup is well-formed, the guard that
 * fast-xml-parser's parser needs in front of it. The parser throws on
 * unclosed comments, CDATA sections, processing instructions and tags, but
 * accepts mismatched and missing end tags (`<a><b></a>`, `<a><b>`), so a
 * file cut short at a tag boundary would otherwise parse as a smaller,
 * seemingly valid document.
 *
 * One forward pass, mostly `indexOf` and short sticky regular expressions
 * (a fraction of the cost of fast-xml-parser's own validator), checking:
 * one root element, closed by its end tag with nothing after it but white
 * space, comments and processing instructions (so a truncated document is
 * refused); end tags that match their start tags; names; attributes quoted,
 * unique per element and free of `<`; `&` only as an entity or character
 * reference; comments, CDATA sections and processing instructions closed;
 * the XML declaration only at the start; no DOCTYPE or other `<!` markup.
 * Not checked: character ranges and namespace bindings.
 */

const NAME_START = ':A-Za-z_\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C-\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD'
const NAME = `[${NAME_START}][${NAME_START}\\-.\\d\\u00B7\\u0300-\\u036F\\u203F-\\u2040]*`

// Sticky: each is tried exactly where the scan stands. The character classes
// of consecutive parts are disjoint, so a failed match cannot backtrack far.
const START_NAME = new RegExp(`<(${NAME})`, 'y')
const ATTRIBUTE = new RegExp(`[ \\t\\r\\n]+(${NAME})[ \\t\\r\\n]*=[ \\t\\r\\n]*(?:"([^"<]*)"|'([^'<]*)')`, 'y')
const START_END = /[ \t\r\n]*(\/?)>/y
const END_TAG = new RegExp(`</(${NAME})[ \\t\\r\\n]*>`, 'y')
const REFERENCE = /&(?:[A-Za-z_:][\w.:-]*|#[0-9]+|#x[0-9a-fA-F]+);/y
const XML_DECLARATION = /<\?xml[ \t\r\n?]/y

// Reused between calls (the check is synchronous): no allocation per element.
const open: string[] = []
const names: string[] = []

/**
 * The name of the root element when `text` is a well-formed XML document
 * (as far as the checks above go), otherwise `undefined`.
 *
 * @example
 * checkMarkup('<a><b/></a>') // 'a'
 * checkMarkup('<a><b></a>')  // undefined (mismatched end tag)
 * checkMarkup('<a><b/>')     // undefined (truncated)
 */
export function checkMarkup(text: string): string | undefined {
  open.length = 0
  try {
    return scan(text)
  } finally {
    open.length = 0
    names.length = 0
  }
}

function scan(text: string): string | undefined {
  const n = text.length
  const start = n > 0 && text.charCodeAt(0) === 0xfeff ? 1 : 0
  let root: string | undefined
  let rootClosed = false
  let i = start
  for (;;) {
    const lt = text.indexOf('<', i)
    const end = lt === -1 ? n : lt
    if (end > i) {
      // Outside the root only white space; inside, `&` must start a reference.
      if (open.length === 0 ? !isBlank(text, i, end) : !referencesOk(text, i, end)) return undefined
    }
    if (lt === -1) break
    const c1 = text.charCodeAt(lt + 1)
    if (c1 === 0x3f /* ? */) {
      const close = text.indexOf('?>', lt + 2)
      if (close === -1) return undefined
      XML_DECLARATION.lastIndex = lt
      if (lt !== start && XML_DECLARATION.test(text)) return undefined
      i = close + 2
    } else if (c1 === 0x21 /* ! */) {
      if (text.startsWith('--', lt + 2)) {
        const close = text.indexOf('-->', lt + 4)
        if (close === -1) return undefined
        i = close + 3
      } else if (text.startsWith('[CDATA[', lt + 2) && open.length > 0) {
        const close = text.indexOf(']]>', lt + 9)
        if (close === -1) return undefined
        i = close + 3
      } else {
        return undefined // DOCTYPE, or CDATA outside the root
      }
    } else if (c1 === 0x2f /* / */) {
      END_TAG.lastIndex = lt
      const m = END_TAG.exec(text)
      if (m === null || open.pop() !== m[1]) return undefined
      if (open.length === 0) rootClosed = true
      i = END_TAG.lastIndex
    } else {
      if (rootClosed) return undefined // a second root
      START_NAME.lastIndex = lt
      const m = START_NAME.exec(text)
      if (m === null) return undefined
      const name = m[1]!
      const after = attributesEnd(text, START_NAME.lastIndex)
      if (after < 0) return undefined
      START_END.lastIndex = after
      const close = START_END.exec(text)
      if (close === null) return undefined
      root ??= name
      if (close[1] === '') open.push(name)
      else if (open.length === 0) rootClosed = true
      i = START_END.lastIndex
    }
  }
  return rootClosed && open.length === 0 ? root : undefined
}

/** Past the attributes starting at `i` (unique, quoted, references valid); -1 when one is not. */
function attributesEnd(text: string, i: number): number {
  names.length = 0
  for (;;) {
    ATTRIBUTE.lastIndex = i
    const m = ATTRIBUTE.exec(text)
    if (m === null) return i
    const name = m[1]!
    if (names.includes(name)) return -1
    names.push(name)
    const value = m[2] ?? m[3]!
    if (value.includes('&') && !referencesOk(value, 0, value.length)) return -1
    i = ATTRIBUTE.lastIndex
  }
}

function isBlank(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i)
    if (c !== 0x20 && c !== 0x0a && c !== 0x09 && c !== 0x0d) return false
  }
  return true
}

/** Every `&` in `text[from, to)` starts an entity or character reference. */
function referencesOk(text: string, from: number, to: number): boolean {
  for (let amp = text.indexOf('&', from); amp !== -1 && amp < to; amp = text.indexOf('&', amp + 1)) {
    REFERENCE.lastIndex = amp
    if (!REFERENCE.test(text) || REFERENCE.lastIndex > to) return false
  }
  return true
}
