/**
 * The copy task (CloudSync spec §5.4): enumerate the set in the query store
 * and copy each object from the source store to the destination store, one
 * `Copying <pid>..<outcome>` line per object with checkpoints only between
 * lines [D29]. Any error ends the whole run as `Failed`; the open line then
 * gets the `ERROR:` right after its `..`.
 */
import { Readable } from 'node:stream'
import { convertToManaged, hasManagedDatastream } from '../stores/foxml.js'
import type { FoxmlObject } from '../stores/foxml.js'
import type { ObjectStoreConnector, WriteOutcome } from '../stores/types.js'
import { COPY_OUTCOME, copyingPrefix } from './log-format.js'
import { enumerateObjectSet } from './object-sets.js'
import { connectorOf, objectSetOf, taskDataOf, TaskRunError } from './runner.js'
import type { RunContext } from './runner.js'
import type { CopyTaskData } from './task-data.js'

const WRITE_OUTCOME: Record<WriteOutcome, string> = {
  new: COPY_OUTCOME.new,
  replaced: COPY_OUTCOME.replaced,
  skipped: COPY_OUTCOME.exists,
}

/**
 * The body of a copy run.
 *
 * @example
 * new TaskRunner({ backend, task, logId, log, body: runCopy }).run()
 */
export async function runCopy(ctx: RunContext): Promise<void> {
  const data = taskDataOf(ctx.task, 'copy')
  const set = await objectSetOf(ctx.backend, data.setId)
  // The three stores may coincide: one connector per distinct store.
  const connectors = new Map<number, Promise<ObjectStoreConnector>>()
  const connector = (id: number) => {
    let c = connectors.get(id)
    if (c === undefined) connectors.set(id, (c = connectorOf(ctx.backend, id, ctx.storeOptions)))
    return c
  }
  const query = await connector(data.queryStoreId)
  const source = await connector(data.sourceStoreId)
  const dest = await connector(data.destStoreId)

  for await (const pid of enumerateObjectSet(query, set, ctx.signal)) {
    await ctx.checkpoint()
    await ctx.log.open(copyingPrefix(pid))
    await ctx.log.line(await copyObject(pid, source, dest, data))
    await ctx.checkpoint()
  }
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
  flags: Pick<CopyTaskData, 'overwrite' | 'includeManaged' | 'copyExternal' | 'copyRedirect'>,
): Promise<string> {
  const obj = await source.readObject(pid)
  if (obj === undefined) return COPY_OUTCOME.absent
  // Judged on the source object, before any E/R conversion.
  if (!flags.includeManaged && hasManagedDatastream(obj)) return COPY_OUTCOME.managed
  const out = convertToManaged(obj, { external: flags.copyExternal, redirect: flags.copyRedirect })
  const outcome = await dest.writeObject(out, (dsId, versionId) => contentOf(source, obj, dsId, versionId), {
    overwrite: flags.overwrite,
  })
  return WRITE_OUTCOME[outcome]
}

/** One version's content from the source, or an error naming it [D40]. */
async function contentOf(source: ObjectStoreConnector, obj: FoxmlObject, dsId: string, versionId: string): Promise<Readable> {
  const stream = await source.readContent(obj.pid, dsId, versionId)
  if (stream !== undefined) return stream
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
