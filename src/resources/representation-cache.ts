/**
 * Serialized responses kept per backend value. A backend that returns the
 * same frozen value while its data is unchanged (the SQLite backend does for
 * users) lets a read skip serializing and hashing: the text and ETag are
 * kept beside that value, per media type and link base, and die with it.
 */
import { entityTag } from '../middleware/security-headers.js'

export interface SerializedReply {
  text: string
  etag: string
}

// Per value: the link base comes from the Host header, so the number of
// variants a client can create is capped.
const MAX_VARIANTS = 16
const cache = new WeakMap<object, Map<string, SerializedReply>>()

/**
 * The serialized text and ETag of a representation built from `source`,
 * made once per `mediaType` and `linkKey` while `source` lives. Only frozen
 * sources are kept (anything else could change under the same identity).
 *
 * @example
 * const { text, etag } = serializedFor(users, 'application/json', links.key, () => serialize(body, 'application/json'))
 */
export function serializedFor(source: object, mediaType: string, linkKey: string, build: () => string): SerializedReply {
  if (!Object.isFrozen(source)) {
    const text = build()
    return { text, etag: entityTag(mediaType, text) }
  }
  let variants = cache.get(source)
  if (variants === undefined) {
    variants = new Map()
    cache.set(source, variants)
  }
  const key = mediaType + '\n' + linkKey
  let entry = variants.get(key)
  if (entry === undefined) {
    const text = build()
    entry = { text, etag: entityTag(mediaType, text) }
    if (variants.size >= MAX_VARIANTS) variants.clear()
    variants.set(key, entry)
  }
  return entry
}
