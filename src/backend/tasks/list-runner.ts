/**
 * The list task (CloudSync spec §5.3): enumerate the set in the store named
 * by `storeUri` and write one line per PID, with a checkpoint after each.
 */
import { enumerateObjectSet } from './object-sets.js'
import { connectorOf, objectSetOf, taskDataOf } from './runner.js'
import type { RunContext } from './runner.js'

/**
 * The body of a list run.
 *
 * @example
 * new TaskRunner({ backend, task, logId, log, body: runList }).run()
 */
export async function runList(ctx: RunContext): Promise<void> {
  const data = taskDataOf(ctx.task, 'list')
  const set = await objectSetOf(ctx.backend, data.setId)
  const store = await connectorOf(ctx.backend, data.storeId, ctx.storeOptions)
  for await (const pid of enumerateObjectSet(store, set, ctx.signal)) {
    await ctx.log.line(pid)
    await ctx.checkpoint()
  }
}
