/**
 * Confinement of filesystem object stores to configured roots [D7]
 * (spec §4.5): the path must be absolute and, after resolving `..` and the
 * symbolic links of its existing part, be a root or lie below one; it must
 * be an existing directory or creatable as one level below an existing one.
 */
import { promises as fs } from 'node:fs'
import path from 'node:path'
import { badRequest } from './errors.js'

/** Resolve symbolic links of the longest existing prefix of an absolute, normalized path. */
async function resolveExisting(target: string): Promise<{ real: string; exists: boolean }> {
  try {
    return { real: await fs.realpath(target), exists: true }
  } catch {
    const parent = path.dirname(target)
    if (parent === target) return { real: target, exists: false }
    const resolved = await resolveExisting(parent)
    return { real: path.join(resolved.real, path.basename(target)), exists: false }
  }
}

function isInside(candidate: string, root: string): boolean {
  if (candidate === root) return true
  const prefix = root.endsWith(path.sep) ? root : root + path.sep
  return candidate.startsWith(prefix)
}

/** Resolve configured roots once (creating them if missing) so comparisons use real paths. */
export async function prepareStoreRoots(roots: readonly string[]): Promise<string[]> {
  const prepared: string[] = []
  for (const root of roots) {
    if (!path.isAbsolute(root)) throw new TypeError(`cloudsync: store root "${root}" must be an absolute path`)
    await fs.mkdir(root, { recursive: true })
    prepared.push(await fs.realpath(root))
  }
  return prepared
}

function outsideRoots(roots: readonly string[]): Error {
  return badRequest(`Filesystem store "path" must be a directory inside one of the allowed store roots (${roots.join(', ')}); the server's administrator sets them with CLOUDSYNC_STORE_ROOTS.`, 'path_not_allowed')
}

/**
 * Check a filesystem store path and make sure its directory exists.
 * Returns a function that undoes the creation (when this call created it).
 */
export async function ensureStoreDirectory(requested: string, roots: readonly string[]): Promise<() => Promise<void>> {
  if (!path.isAbsolute(requested) || requested.includes('\0')) {
    throw badRequest('Filesystem store "path" must be an absolute directory path on the server.', 'path_not_absolute')
  }
  const { real, exists } = await resolveExisting(path.resolve(requested))
  if (!roots.some((root) => isInside(real, root))) throw outsideRoots(roots)
  if (exists) {
    const stat = await fs.stat(real).catch(() => undefined)
    if (stat === undefined || !stat.isDirectory()) throw badRequest('Filesystem store "path" names something that is not a directory.', 'path_not_directory')
    return async () => {}
  }
  const parent = await fs.stat(path.dirname(real)).catch(() => undefined)
  if (parent === undefined || !parent.isDirectory()) {
    throw badRequest('Filesystem store "path" must exist, or its parent directory must exist so that it can be created.', 'path_parent_missing')
  }
  try {
    await fs.mkdir(real)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw badRequest('The server cannot create the filesystem store directory; check the path and its permissions.', 'path_not_creatable')
    }
    return async () => {}
  }
  return async () => {
    await fs.rmdir(real).catch(() => {})
  }
}
