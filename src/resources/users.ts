/** `users`: user accounts and their permission rules (spec §3.5, §4.3). */
import type { UserRecord, UserChanges } from '../backend/types.js'
import type { AuthUser } from '../middleware/context.js'
import type { Call, Operation, Reply } from './operation.js'
import type { Links } from './links.js'
import type { EntityBody, Fields } from './representation.js'
import { unwrap, trimmedString, rawString, booleanField, checkBodyId, javaTrim, pathId } from './input.js'
import { badRequest, conflict, forbidden, notFound, toHttpError } from './errors.js'

const MAX_NAME = 64

export function userFields(user: UserRecord, links: Links): Fields {
  return { admin: user.admin, enabled: user.enabled, name: user.name, uri: links.entity('users', user.id) }
}

function userBody(user: UserRecord, links: Links): EntityBody {
  return { kind: 'entity', root: 'user', fields: userFields(user, links) }
}

function isAdmin(user: AuthUser | undefined): boolean {
  return user?.admin === true
}

/** A given name: trimmed, non-blank, ≤ 64 [D15]. Absent/null → undefined. */
function nameField(input: Record<string, unknown>, required: boolean): string | undefined {
  const raw = rawString(input, 'name')
  if (raw === undefined) {
    if (required) throw badRequest('Field "name" is required: 1 to 64 characters.')
    return undefined
  }
  const name = javaTrim(raw)
  if (name === '' || name.length > MAX_NAME) throw badRequest('Field "name" must be 1 to 64 characters long (after trimming).')
  return name
}

/** A given password: non-empty, not trimmed [D15]. */
function passwordField(input: Record<string, unknown>, required: boolean): string | undefined {
  const password = rawString(input, 'password')
  if (password === undefined) {
    if (required) throw badRequest('Field "password" is required and must not be empty.')
    return undefined
  }
  if (password === '') throw badRequest('Field "password" must not be empty.')
  return password
}

export const listUsers: Operation = {
  produces: 'users',
  async run({ links, services }: Call): Promise<Reply> {
    const users = await services.backend.listUsers()
    return { status: 200, body: { kind: 'list', plural: 'users', singular: 'user', items: users.map((u) => userFields(u, links)) }, source: users }
  }
}

export const createUser: Operation = {
  produces: 'user',
  consumes: 'user',
  async run({ body, links, services }: Call): Promise<Reply> {
    const input = unwrap(body, 'user')
    checkBodyId(input, undefined)
    const name = nameField(input, true)!
    const password = passwordField(input, true)!
    const admin = booleanField(input, 'admin')
    const enabled = booleanField(input, 'enabled')
    if (admin === undefined || enabled === undefined) throw badRequest('Fields "admin" and "enabled" are required: true or false.')
    let user: UserRecord
    try {
      user = await services.backend.createUser({ name, password, admin, enabled })
    } catch (err) {
      throw toHttpError(err)
    }
    const reply = userBody(user, links)
    return { status: 201, body: reply, location: reply.fields.uri as string }
  }
}

export const getCurrentUser: Operation = {
  produces: 'user',
  async run({ user, links, services }: Call): Promise<Reply> {
    const record = user === undefined ? undefined : await services.backend.getUser(Number(user.id))
    if (record === undefined) throw notFound('The current user')
    const reply = userBody(record, links)
    return { status: 200, body: reply, contentLocation: reply.fields.uri as string }
  }
}

export const getUser: Operation = {
  produces: 'user',
  async run({ params, links, services }: Call): Promise<Reply> {
    const record = await services.backend.getUser(pathId(params[0]!))
    if (record === undefined) throw notFound('This user')
    return { status: 200, body: userBody(record, links) }
  }
}

export const updateUser: Operation = {
  produces: 'user',
  consumes: 'user',
  async run({ params, body, user, links, services }: Call): Promise<Reply> {
    const id = pathId(params[0]!)
    const { backend } = services
    const current = await backend.getUser(id)
    if (current === undefined) throw notFound('This user')
    const input = unwrap(body, 'user')
    checkBodyId(input, id)
    const changes: UserChanges = {}
    const name = nameField(input, false)
    const password = passwordField(input, false)
    const admin = booleanField(input, 'admin')
    const enabled = booleanField(input, 'enabled')
    if (name !== undefined) changes.name = name
    if (password !== undefined) changes.password = password
    if (admin !== undefined) changes.admin = admin
    if (enabled !== undefined) changes.enabled = enabled
    const merged = { admin: admin ?? current.admin, enabled: enabled ?? current.enabled }
    const self = user !== undefined && String(user.id) === String(id)
    if (self) {
      if (!merged.enabled) throw forbidden('You cannot disable your own account; ask another administrator.')
      if (isAdmin(user) && !merged.admin) throw forbidden('You cannot remove your own administrator role; ask another administrator.')
      if (!isAdmin(user) && merged.admin) throw forbidden('Only administrators can grant the administrator role.')
    } else if (!isAdmin(user)) {
      throw forbidden('Only administrators can change other users.')
    }
    let updated: UserRecord
    try {
      updated = await backend.updateUser(id, changes)
    } catch (err) {
      throw toHttpError(err)
    }
    services.onUsersChanged()
    return { status: 200, body: userBody(updated, links) }
  }
}

export const deleteUser: Operation = {
  async run({ params, user, services }: Call): Promise<Reply> {
    const id = pathId(params[0]!)
    if (!isAdmin(user)) throw forbidden('Only administrators can delete users.')
    if (user !== undefined && String(user.id) === String(id)) throw conflict('You cannot delete your own account; ask another administrator.', 'self_delete')
    try {
      await services.backend.deleteUser(id)
    } catch (err) {
      throw toHttpError(err)
    }
    services.onUsersChanged()
    return { status: 204 }
  }
}
