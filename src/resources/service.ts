/** `service`: service info and first-time initialization (spec §3.3, §3.4, §4.2). */
import type { Call, Operation, Reply } from './operation.js'
import type { Links } from './links.js'
import type { EntityBody } from './representation.js'
import { unwrap, trimmedString, rawString } from './input.js'
import { badRequest, conflict, toHttpError } from './errors.js'

export const VERSION = '1.1.1'
const BUILD_DATE = formatBuildDate(new Date())

function formatBuildDate(date: Date): string {
  const iso = date.toISOString()
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC+0000`
}

export function serviceInfo(links: Links, initialized: boolean): EntityBody {
  return {
    kind: 'entity',
    root: 'service',
    fields: {
      buildDate: BUILD_DATE,
      currentUserUri: links.resource('users/current'),
      initialized,
      objectSetsUri: links.resource('objectSets'),
      objectStoresUri: links.resource('objectStores'),
      providerAccountsUri: links.resource('duracloud/providerAccounts'),
      spacesUri: links.resource('duracloud/spaces'),
      taskLogsUri: links.resource('taskLogs'),
      tasksUri: links.resource('tasks'),
      usersUri: links.resource('users'),
      version: VERSION
    }
  }
}

export const getService: Operation = {
  produces: 'serviceinfo',
  async run({ links, services }: Call): Promise<Reply> {
    return { status: 200, body: serviceInfo(links, await services.backend.isInitialized()) }
  }
}

export const initService: Operation = {
  produces: 'serviceinfo',
  consumes: 'serviceinit',
  async run({ body, links, services }: Call): Promise<Reply> {
    const input = unwrap(body, 'serviceInit')
    const { backend } = services
    if (await backend.isInitialized()) throw conflict('The service is already initialized; log in with an existing account.', 'already_initialized')
    const name = trimmedString(input, 'initialAdminUsername')
    if (name === undefined || name.length > 64) throw badRequest('initialAdminUsername is required and must be 1 to 64 characters long.')
    const password = rawString(input, 'initialAdminPassword')
    if (password === undefined || password === '') throw badRequest('initialAdminPassword is required and must not be empty.')
    try {
      await backend.initialize({ name, password })
    } catch (err) {
      throw toHttpError(err)
    }
    return { status: 200, body: serviceInfo(links, true) }
  }
}
