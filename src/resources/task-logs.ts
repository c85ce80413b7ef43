/** `taskLogs`: one log per task run, and its text content (spec §3.9, §4.7). */
import type { TaskLogRecord } from '../backend/types.js'
import type { Call, Operation, Reply } from './operation.js'
import type { Links } from './links.js'
import type { EntityBody, Fields } from './representation.js'
import { pathId } from './input.js'
import { notFound, toHttpError } from './errors.js'

export function taskLogFields(log: TaskLogRecord, links: Links): Fields {
  return {
    contentUri: links.logContent(log.id),
    finishDate: log.finishDate === undefined ? undefined : new Date(log.finishDate).toISOString(),
    resultType: log.resultType,
    startDate: new Date(log.startDate).toISOString(),
    taskUri: links.entity('tasks', log.taskId),
    uri: links.entity('taskLogs', log.id)
  }
}

function body(log: TaskLogRecord, links: Links): EntityBody {
  return { kind: 'entity', root: 'taskLog', fields: taskLogFields(log, links) }
}

export const listTaskLogs: Operation = {
  produces: 'tasklogs',
  async run({ links, services }: Call): Promise<Reply> {
    const logs = await services.backend.listTaskLogs()
    return { status: 200, body: { kind: 'list', plural: 'taskLogs', singular: 'taskLog', items: logs.map((l) => taskLogFields(l, links)) } }
  }
}

export const getTaskLog: Operation = {
  produces: 'tasklog',
  async run({ params, links, services }: Call): Promise<Reply> {
    const log = await services.backend.getTaskLog(pathId(params[0]!))
    if (log === undefined) throw notFound('This task log')
    return { status: 200, body: body(log, links) }
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
  return Buffer.concat(chunks).toString('utf8')
}

export const getTaskLogContent: Operation = {
  produces: 'text',
  async run({ params, services }: Call): Promise<Reply> {
    const id = pathId(params[0]!)
    const log = await services.backend.getTaskLog(id)
    const stream = log === undefined ? undefined : await services.backend.readTaskLogContent(id)
    if (log === undefined || stream === undefined) throw notFound('This task log\'s content')
    // A finished log never changes, so it can be validated with an ETag; a growing one cannot.
    if (log.resultType === 'Incomplete') return { status: 200, stream }
    return { status: 200, text: await readAll(stream), cacheable: true }
  }
}

export const deleteTaskLog: Operation = {
  async run({ params, services }: Call): Promise<Reply> {
    try {
      await services.backend.deleteTaskLog(pathId(params[0]!))
    } catch (err) {
      throw toHttpError(err)
    }
    return { status: 204 }
  }
}
