/** `tasks`: list and copy tasks and their state machine (spec §3.6, §4.6). */
import { TASK_STATES } from '../backend/types.js'
import type { TaskRecord, TaskState, TaskType, TaskChanges } from '../backend/types.js'
import type { Call, Operation, Reply } from './operation.js'
import type { Links } from './links.js'
import type { EntityBody, Fields } from './representation.js'
import { unwrap, trimmedString, checkBodyId, isBlankField, rawString, javaTrim, pathId } from './input.js'
import type { Input } from './input.js'
import { badRequest, conflict, notFound, toHttpError } from './errors.js'
import { validateTaskData } from './task-data.js'

const MAX_NAME = 256
const MAX_TYPE = 32
const MAX_SCHEDULE = 1024

/** Requests a client may make from each non-Idle state (spec §4.6). */
const ALLOWED_REQUESTS: Record<Exclude<TaskState, 'Idle'>, readonly TaskState[]> = {
  Starting: ['Canceling'],
  Running: ['Pausing', 'Canceling'],
  Resuming: ['Pausing', 'Canceling'],
  Pausing: ['Resuming', 'Canceling'],
  Paused: ['Resuming', 'Canceling'],
  Canceling: []
}

export function taskFields(task: TaskRecord, links: Links): Fields {
  const showLog = task.activeLogId !== undefined && task.state !== 'Idle' && task.state !== 'Starting'
  return {
    activeLogUri: showLog ? links.entity('taskLogs', task.activeLogId!) : undefined,
    data: task.data,
    name: task.name,
    schedule: task.schedule,
    state: task.state,
    type: task.type,
    uri: links.entity('tasks', task.id)
  }
}

function body(task: TaskRecord, links: Links): EntityBody {
  return { kind: 'entity', root: 'task', fields: taskFields(task, links) }
}

interface GivenTaskFields { name?: string; type?: string; state?: string; schedule?: string; data?: string }

function givenFields(input: Input): GivenTaskFields {
  const fields: GivenTaskFields = {}
  for (const key of ['name', 'type', 'state', 'schedule', 'data'] as const) {
    const value = trimmedString(input, key)
    if (value !== undefined) fields[key] = value
  }
  return fields
}

function checkName(name: string | undefined): string {
  if (name === undefined || name.length > MAX_NAME) throw badRequest('Field "name" is required: 1 to 256 characters.')
  return name
}

function checkType(type: string | undefined): TaskType {
  if (type === undefined || type.length > MAX_TYPE || (type !== 'list' && type !== 'copy')) {
    throw badRequest('Field "type" must be list or copy.')
  }
  return type
}

function checkSchedule(schedule: string | undefined): void {
  if (schedule !== undefined && schedule.length > MAX_SCHEDULE) throw badRequest('Field "schedule" must be at most 1024 characters long.')
}

function checkData(data: string | undefined): string {
  if (data === undefined) throw badRequest('Field "data" is required: a JSON object naming the set and stores.')
  return data
}

function checkActiveLogId(input: Input, current: TaskRecord | undefined): void {
  if (isBlankField(input, 'activeLogId')) return
  const given = javaTrim(rawString(input, 'activeLogId') ?? '')
  if (current === undefined) throw badRequest('Do not send "activeLogId": the server sets it.', 'id_given')
  if (current.activeLogId === undefined || given !== String(current.activeLogId)) {
    throw badRequest('Field "activeLogId" does not match the task\'s active log; omit it.', 'id_mismatch')
  }
}

export const listTasks: Operation = {
  produces: 'tasks',
  async run({ links, services }: Call): Promise<Reply> {
    const tasks = await services.backend.listTasks()
    return { status: 200, body: { kind: 'list', plural: 'tasks', singular: 'task', items: tasks.map((t) => taskFields(t, links)) } }
  }
}

export const createTask: Operation = {
  produces: 'task',
  consumes: 'task',
  async run({ body: raw, links, services }: Call): Promise<Reply> {
    const input = unwrap(raw, 'task')
    checkBodyId(input, undefined)
    checkActiveLogId(input, undefined)
    const given = givenFields(input)
    const name = checkName(given.name)
    const type = checkType(given.type)
    if (given.state !== 'Idle' && given.state !== 'Starting') throw badRequest('Field "state" is required: Idle, or Starting to run the task now.')
    checkSchedule(given.schedule)
    const data = checkData(given.data)
    const dependencies = await validateTaskData(type, data, services.backend)
    let task: TaskRecord
    try {
      task = await services.backend.createTask({
        name, type, state: given.state, data, dependencies,
        ...(given.schedule === undefined ? {} : { schedule: given.schedule })
      })
    } catch (err) {
      throw toHttpError(err)
    }
    if (task.state === 'Starting') services.onTaskChanged()
    const created = body(task, links)
    return { status: 201, body: created, location: created.fields.uri as string }
  }
}

export const getTask: Operation = {
  produces: 'task',
  async run({ params, links, services }: Call): Promise<Reply> {
    const task = await services.backend.getTask(pathId(params[0]!))
    if (task === undefined) throw notFound('This task')
    return { status: 200, body: body(task, links) }
  }
}

async function patchIdleTask(current: TaskRecord, given: GivenTaskFields, call: Call): Promise<TaskRecord> {
  if (given.state !== undefined && given.state !== 'Idle' && given.state !== 'Starting') {
    throw conflict(`An Idle task can only be set to Starting, not ${given.state}.`, 'illegal_transition')
  }
  const name = checkName(given.name ?? current.name)
  const type = checkType(given.type ?? current.type)
  checkSchedule(given.schedule)
  const data = checkData(given.data ?? current.data)
  const dependencies = await validateTaskData(type, data, call.services.backend)
  const changes: TaskChanges = { name, type, data, dependencies }
  if (given.schedule !== undefined) changes.schedule = given.schedule
  if (given.state !== undefined) changes.state = given.state as TaskState
  return call.services.backend.updateTask(current.id, changes, 'Idle')
}

async function patchActiveTask(current: TaskRecord, given: GivenTaskFields, call: Call): Promise<TaskRecord> {
  for (const key of ['name', 'type', 'schedule', 'data'] as const) {
    if (given[key] !== undefined && given[key] !== current[key]) {
      throw conflict(`The task's ${key} cannot change while it is ${current.state}; wait until it is Idle.`, 'task_active')
    }
  }
  const requested = given.state as TaskState | undefined
  if (requested === undefined || requested === current.state) return current
  const allowed = ALLOWED_REQUESTS[current.state as Exclude<TaskState, 'Idle'>]
  if (!allowed.includes(requested)) {
    const options = allowed.length === 0 ? 'nothing: wait until it is Idle' : allowed.join(' or ')
    throw conflict(`A ${current.state} task cannot be set to ${requested}; it can be set to ${options}.`, 'illegal_transition')
  }
  return call.services.backend.updateTask(current.id, { state: requested }, current.state)
}

export const updateTask: Operation = {
  produces: 'task',
  consumes: 'task',
  async run(call: Call): Promise<Reply> {
    const { params, body: raw, links, services } = call
    const id = pathId(params[0]!)
    const current = await services.backend.getTask(id)
    if (current === undefined) throw notFound('This task')
    const input = unwrap(raw, 'task')
    checkBodyId(input, id)
    checkActiveLogId(input, current)
    const given = givenFields(input)
    if (given.state !== undefined && !TASK_STATES.includes(given.state as TaskState)) {
      throw badRequest(`Field "state" must be one of ${TASK_STATES.join(', ')}.`)
    }
    let task: TaskRecord
    try {
      task = current.state === 'Idle' ? await patchIdleTask(current, given, call) : await patchActiveTask(current, given, call)
    } catch (err) {
      const mapped = toHttpError(err)
      if ((err as { code?: string }).code === 'state_changed') {
        throw conflict('The task\'s state changed meanwhile; read it again and retry.', 'state_changed')
      }
      throw mapped
    }
    if (task.state !== current.state) services.onTaskChanged()
    return { status: 200, body: body(task, links) }
  }
}

export const deleteTask: Operation = {
  async run({ params, services }: Call): Promise<Reply> {
    try {
      await services.backend.deleteTask(pathId(params[0]!))
    } catch (err) {
      throw toHttpError(err)
    }
    return { status: 204 }
  }
}
