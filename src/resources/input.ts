/**
 * Reading entity fields from parsed request bodies (spec §3.1, §4.1).
 *
 * Bodies arrive as `{ root: { field: value } }` from JSON or XML. Only the
 * fields an operation names are ever read (allow-listing); strings are
 * trimmed with Java `String.trim` semantics; numbers and booleans given for
 * string fields become their JSON text; JSON booleans and the exact strings
 * `"true"`/`"false"` are booleans.
 */
import { badRequest } from './errors.js'

export type Input = Record<string, unknown>

/** The field object under `root`; 400 for any other shape. */
export function unwrap(body: unknown, root: string): Input {
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
    const keys = Object.keys(body)
    if (keys.length === 1 && keys[0] === root) {
      const inner = (body as Record<string, unknown>)[root]
      // An empty XML element (`<task/>`) parses as ''.
      if (inner === '' || inner === null) return {}
      if (typeof inner === 'object' && !Array.isArray(inner)) return inner as Input
    }
  }
  throw badRequest(`The body must be a single "${root}" entity, e.g. {"${root}": {…}} or <${root}>…</${root}>.`, 'wrong_root')
}

/** Java `String.trim`: strip leading and trailing code points ≤ U+0020. */
export function javaTrim(text: string): string {
  let start = 0
  let end = text.length
  while (start < end && text.charCodeAt(start) <= 0x20) start++
  while (end > start && text.charCodeAt(end - 1) <= 0x20) end--
  return start === 0 && end === text.length ? text : text.slice(start, end)
}

/** The raw string of a field: absent/null → undefined; numbers/booleans → JSON text; objects → 400. */
export function rawString(input: Input, name: string): string | undefined {
  const value = input[name]
  if (value === undefined || value === null) return undefined
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value)
  throw badRequest(`Field "${name}" must be a string.`)
}

/** The trimmed string of a field, or undefined when blank (absent, null or empty after trim). */
export function trimmedString(input: Input, name: string): string | undefined {
  const raw = rawString(input, name)
  if (raw === undefined) return undefined
  const trimmed = javaTrim(raw)
  return trimmed === '' ? undefined : trimmed
}

/** Whether a field is blank (absent, null, or empty after trim). */
export function isBlankField(input: Input, name: string): boolean {
  const value = input[name]
  if (value === undefined || value === null) return true
  if (typeof value === 'string') return javaTrim(value) === ''
  return false
}

/** A boolean field: absent/null → undefined; true/false or "true"/"false" → boolean; else 400. */
export function booleanField(input: Input, name: string): boolean | undefined {
  const value = input[name]
  if (value === undefined || value === null) return undefined
  if (value === true || value === 'true') return true
  if (value === false || value === 'false') return false
  throw badRequest(`Field "${name}" must be true or false.`)
}

/** 400 unless `value` (already trimmed) has 1..max UTF-16 code units. */
export function requireLength(value: string | undefined, name: string, max: number, what = `Field "${name}"`): string {
  if (value === undefined || value === '') throw badRequest(`${what} is required and must not be blank.`)
  if (value.length > max) throw badRequest(`${what} must be at most ${max} characters long.`)
  return value
}

/** The path id as a number; non-decimal ids were already refused by the router. */
export function pathId(text: string): number {
  return Number(text)
}

/** 400 when a body `id` is given (POST) or names another entity than the path (PATCH) [D13]. */
export function checkBodyId(input: Input, pathIdValue: number | undefined, field = 'id'): void {
  if (isBlankField(input, field)) return
  const given = javaTrim(rawString(input, field) ?? '')
  if (pathIdValue === undefined) {
    throw badRequest(`Do not send "${field}" when creating an entity: the server assigns it.`, 'id_given')
  }
  if (given !== String(pathIdValue)) {
    throw badRequest(`Field "${field}" does not match the entity addressed by the URI; omit it.`, 'id_mismatch')
  }
}
