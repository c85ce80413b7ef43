/**
 * The copy task (CloudSync spec §5.4): enumerate the set in the query store
 * and copy each object from the source store to the destination store, one
 * `Copying <pid>..<outcome>` line per object with checkpoints only between
 * lines [D29]. Any error ends the whole run as `Failed`; the open line then
 * gets the `ERROR:` right after its `..`.
 */
import type { FoxmlObject } from '../stores/foxml.js'
import type { ObjectStoreConnector } from '../stores/types.js'
import { copyObject } from './copy-object.js'
import type { CopyFlags } from './copy-object.js'
import { runCopyInWorker } from './copy-offload.js'
import { copyingPrefix } from './log-format.js'
import { enumerateObjectSet, parseObjectSet } from './object-sets.js'
import { connectorOf, objectSetOf, taskDataOf } from './runner.js'
import type { RunContext } from './runner.js'

export { copyObject } from './copy-object.js'
export type { CopyFlags } from './copy-object.js'

interface Next {
  pid: string
  /** The source object, read ahead. */
  obj: Promise<FoxmlObject | undefined>
}

function ignore(): void {}

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
  const flags: CopyFlags = {
    overwrite: data.overwrite,
    includeManaged: data.includeManaged,
    copyExternal: data.copyExternal,
    copyRedirect: data.copyRedirect,
  }
  // Between filesystem stores the loop runs in worker threads (same lines, same checkpoints).
  // (It needs onSignal to call the workers to a checkpoint.)
  if (ctx.workerThreads !== false && ctx.onSignal !== undefined && (await runCopyInWorker(ctx, { query, source, dest }, parseObjectSet(set), flags, ctx.copyThreads))) return

  // Look ahead by one object: while one object is copied, the next PID is
  // enumerated (and, in-process, its source object read and parsed). Only
  // reads run ahead, so a checkpoint still sits between any two writes.
  const pids = enumerateObjectSet(query, set, ctx.signal)[Symbol.asyncIterator]()
  const pull = async (): Promise<Next | undefined> => {
    const next = await pids.next()
    if (next.done === true) return undefined
    const obj = source.readObject(next.value)
    obj.catch(ignore) // observed when its turn comes (or never, after a cancel)
    return { pid: next.value, obj }
  }
  let ahead = pull()
  try {
    for (;;) {
      const current = await ahead
      if (current === undefined) break
      ahead = pull()
      ahead.catch(ignore)
      await ctx.checkpoint()
      await ctx.log.open(copyingPrefix(current.pid))
      await ctx.log.line(await copyObject(current.pid, source, dest, flags, current.obj))
      await ctx.checkpoint()
    }
  } finally {
    // Stop the enumeration (after any look-ahead in progress).
    await ahead.catch(ignore)
    await pids.return?.(undefined)
  }
}
