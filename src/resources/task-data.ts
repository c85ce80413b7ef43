/**
 * Task `data` validation for the HTTP layer: the engine's own parser
 * (spec §4.6, §4.1) plus the existence check, as 400 problems.
 */
import type { Backend, TaskDependencies, TaskType } from '../backend/types.js'
import { parseTaskData, checkTaskReferences } from '../backend/tasks/task-data.js'
import { badRequest } from './errors.js'

const MAX_DATA = 32672

/** Check a task's data text for its type; returns the dependencies to record. */
export async function validateTaskData(type: TaskType, text: string, backend: Backend): Promise<TaskDependencies> {
  if (text.length > MAX_DATA) throw badRequest('Field "data" must be at most 32672 characters long.')
  const parsed = parseTaskData(type, text)
  if (!parsed.ok) throw badRequest(parsed.message, 'invalid_task_data')
  const missing = await checkTaskReferences(backend, parsed.data)
  if (missing !== undefined) throw badRequest(missing, 'invalid_task_data')
  return parsed.dependencies
}
