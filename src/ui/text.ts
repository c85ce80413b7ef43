/**
 * CloudSync default UI — pure text helpers: the name suggestions of spec
 * §7.3, the DuraCloud URL shorthand, and log-progress counting. No DOM, so
 * they can be checked in isolation (`CloudSyncUI.suggestStoreName(…)`).
 */
const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i

/**
 * The host (with port) of a URL, or the trimmed input when it is not a URL.
 *
 * @example
 * hostOf('http://repo.example.org:8080/fedora') // 'repo.example.org:8080'
 */
export function hostOf(url: string): string {
  const text = url.trim()
  try {
    return new URL(text).host || text
  } catch {
    return text
  }
}

/**
 * The DuraStore base URL for what a person typed: a bare host name
 * (`demo.duracloud.org`) becomes `https://demo.duracloud.org/durastore`;
 * anything with a scheme is kept (trimmed, without trailing slashes).
 *
 * @example
 * duraCloudUrl('demo.duracloud.org') // 'https://demo.duracloud.org/durastore'
 */
export function duraCloudUrl(input: string): string {
  const text = input.trim()
  if (text === '') return ''
  if (SCHEME.test(text)) return text.replace(/\/+$/, '')
  if (text.indexOf('/') === -1) return `https://${text}/durastore`
  return `https://${text.replace(/\/+$/, '')}`
}

/** The fields a store name is suggested from. */
export interface StoreNameInput {
  type: string
  path?: string
  url?: string
  space?: string
  prefix?: string
  providerName?: string
}

/**
 * The suggested name of an object store (spec §7.3), or `''` while the
 * form lacks what the name is made of.
 *
 * @example
 * suggestStoreName({ type: 'filesystem', path: '/srv/backup' }) // 'Local Directory /srv/backup'
 * suggestStoreName({ type: 'duracloud', url: 'https://d.org/durastore', space: 'img', prefix: 'x', providerName: 'AMAZON_S3' })
 * // 'DuraCloud Space img/x at d.org (AMAZON_S3)'
 */
export function suggestStoreName(input: StoreNameInput): string {
  const path = (input.path || '').trim()
  const url = (input.url || '').trim()
  switch (input.type) {
    case 'filesystem':
      return path === '' ? '' : `Local Directory ${path}`
    case 'fedora':
      return url === '' ? '' : `Fedora Repository at ${hostOf(url)}`
    case 'duracloud': {
      const space = (input.space || '').trim()
      if (url === '' || space === '') return ''
      const prefix = (input.prefix || '').trim()
      const provider = (input.providerName || '').trim()
      return `DuraCloud Space ${space}${prefix === '' ? '' : `/${prefix}`} at ${hostOf(url)}${provider === '' ? '' : ` (${provider})`}`
    }
    default:
      return ''
  }
}

/**
 * The suggested name of a task (spec §7.3), or `''` while a part is missing.
 *
 * @example
 * suggestTaskName('list', 'All Objects', ['Backup']) // 'List All Objects in Backup'
 * suggestTaskName('copy', 'All Objects', ['Repo', 'Repo', 'Backup']) // 'Copy All Objects from Repo to Backup'
 */
export function suggestTaskName(type: string, setName: string, storeNames: string[]): string {
  if (setName === '') return ''
  if (type === 'list') return storeNames[0] ? `List ${setName} in ${storeNames[0]}` : ''
  // Copy: [query store, source store, destination store]; the name uses source and destination.
  const source = storeNames[1]
  const dest = storeNames[2]
  return source && dest ? `Copy ${setName} from ${source} to ${dest}` : ''
}

/**
 * How many objects a run has handled so far: the log lines that are
 * neither comments (`# Started …`) nor error details. A line that is still
 * being written (`Copying demo:9..`) counts, as the object is under way.
 *
 * @example
 * countObjectLines('# Started at …\ndemo:1\ndemo:2\n') // 2
 */
export function countObjectLines(text: string): number {
  let count = 0
  let start = 0
  while (start < text.length) {
    let end = text.indexOf('\n', start)
    if (end === -1) end = text.length
    const first = text.charCodeAt(start)
    // Skip empty lines, "# …" comments and "ERROR: …" lines.
    if (end > start && first !== 0x23 && !(first === 0x45 && text.startsWith('ERROR:', start)) && first !== 0x20 && first !== 0x09) count++
    start = end + 1
  }
  return count
}

/**
 * The last `lines` lines of a text (without a trailing empty line).
 *
 * @example
 * tail('a\nb\nc\n', 2) // 'b\nc'
 */
export function tail(text: string, lines: number): string {
  const body = text.endsWith('\n') ? text.slice(0, -1) : text
  let start = body.length
  for (let i = 0; i < lines; i++) {
    const nl = start === 0 ? -1 : body.lastIndexOf('\n', start - 1)
    if (nl === -1) return body
    start = nl
  }
  return body.slice(start + 1)
}

/**
 * A one-line summary of an object set's definition.
 *
 * @example
 * describeSet({ type: 'pidList', data: 'demo:1\ndemo:2' }) // '2 PIDs: demo:1, demo:2'
 */
export function describeSet(set: { type: string; data: string }): string {
  if (set.type === 'pidPattern') return `PIDs matching ${set.data}`
  if (set.type === 'pidList') {
    const pids = set.data.split(/\s+/).filter((p) => p !== '')
    const shown = pids.slice(0, 3).join(', ')
    return `${pids.length} PID${pids.length === 1 ? '' : 's'}: ${shown}${pids.length > 3 ? ', …' : ''}`
  }
  const query = parseJsonObject(set.data)
  return query ? `${String(query.queryType)} query: ${String(query.queryText)}` : set.data
}

/**
 * A one-line summary of an object store's location.
 *
 * @example
 * describeStore({ type: 'filesystem', data: '{"path":"/srv/x"}' }) // '/srv/x'
 */
export function describeStore(store: { type: string; data: string }): string {
  const data = parseJsonObject(store.data)
  if (data === undefined) return ''
  if (store.type === 'filesystem') return String(data.path ?? '')
  if (store.type === 'fedora') return `${String(data.url ?? '')} as ${String(data.username ?? '')}`
  const prefix = data.prefix ? `/${String(data.prefix)}` : ''
  return `${String(data.url ?? '')}, space ${String(data.space ?? '')}${prefix}, account ${String(data.providerId ?? '')}${data.providerName ? ` (${String(data.providerName)})` : ''}`
}

/**
 * Parse JSON text that should hold an object; `undefined` otherwise.
 *
 * @example
 * parseJsonObject('{"setUri":"…"}')?.setUri
 */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}
