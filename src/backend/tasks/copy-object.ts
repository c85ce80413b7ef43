/**
 * Copying one object (CloudSync spec §5.4 steps 3–5): read it from the
 * source, apply `includeManaged`, convert E/R datastreams when asked, and
 * write it with the content of every managed version to the destination.
 * Used in-process and by the copy worker alike.
 */
import { Readable } from 'node:stream'
import { contentForCopy } from '../stores/filesystem.js'
import { convertToManaged, hasManagedDatastream } from '../stores/foxml.js'
import type { FoxmlObject } from '../stores/foxml.js'
import type { ObjectStoreConnector, WriteOutcome } from '../stores/types.js'
import { COPY_OUTCOME } from './log-format.js'
import { TaskRunError } from './runner.js'
import type { CopyTaskData } from './task-data.js'

/** The copy flags of a task (spec §4.6). */
export type CopyFlags = Pick<CopyTaskData, 'overwrite' | 'includeManaged' | 'copyExternal' | 'copyRedirect'>

const WRITE_OUTCOME: Record<WriteOutcome, string> = {
  new: COPY_OUTCOME.new,
  replaced: COPY_OUTCOME.replaced,
  skipped: COPY_OUTCOME.exists,
}

/**
 * Copy one object; the outcome text for its log line (spec §5.4).
 *
 * @example
 * await copyObject('demo:1', source, dest, data) // 'OK (new in destination)'
 */
export async function copyObject(
  pid: string,
  source: ObjectStoreConnector,
  dest: ObjectStoreConnector,
  flags: CopyFlags,
  /** The source object when already being read (look-ahead); read here otherwise. */
  preloaded?: Promise<FoxmlObject | undefined>,
): Promise<string> {
  const obj = await (preloaded ?? source.readObject(pid))
  if (obj === undefined) return COPY_OUTCOME.absent
  // Judged on the source object, before any E/R conversion.
  if (!flags.includeManaged && hasManagedDatastream(obj)) return COPY_OUTCOME.managed
  const out = convertToManaged(obj, { external: flags.copyExternal, redirect: flags.copyRedirect })
  const outcome = await dest.writeObject(out, (dsId, versionId) => contentOf(source, dest, obj, dsId, versionId), {
    overwrite: flags.overwrite,
  })
  return WRITE_OUTCOME[outcome]
}

/** One version's content from the source, or an error naming it [D40]. */
async function contentOf(source: ObjectStoreConnector, dest: ObjectStoreConnector, obj: FoxmlObject, dsId: string, versionId: string): Promise<Readable> {
  // Between filesystem stores the file is copied by path without a look first; a missing one gets absentContent too.
  const byPath = contentForCopy(source, dest, obj.pid, dsId, versionId, async () => absentContent(obj, dsId, versionId))
  if (byPath !== undefined) return byPath
  const stream = await source.readContent(obj.pid, dsId, versionId)
  return stream ?? absentContent(obj, dsId, versionId)
}

/** What to copy when the source store has no content for a version: inline content, or an error naming it. */
function absentContent(obj: FoxmlObject, dsId: string, versionId: string): Readable {
  const ds = obj.datastreams.find((d) => d.id === dsId)
  // Archive-style FOXML may carry managed content inline.
  const inline = ds?.versions.find((v) => v.id === versionId)?.binaryContent
  if (inline !== undefined) return Readable.from([Buffer.from(inline, 'base64')])
  const what = `${obj.pid} datastream ${dsId} version ${versionId}`
  throw new TaskRunError(
    ds?.controlGroup === 'E' || ds?.controlGroup === 'R'
      ? `The source store cannot supply the content of ${what} (${ds.controlGroup === 'E' ? 'an External' : 'a Redirect'} datastream); ` +
          'turn off copyExternal/copyRedirect or copy from a store that can fetch it.'
      : `The source store has no content for ${what}; repair the object in the source store or leave it out of the set.`,
  )
}
