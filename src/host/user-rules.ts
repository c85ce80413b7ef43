/**
 * Who may manage users (spec §4.3): the rules that depend only on the user,
 * the method and the path, checked before the body is read (spec §1.4: 403
 * before 415/406/400). Rules that depend on the body live in the resource.
 */
import type { IncomingMessage } from 'node:http'
import { pathOnly } from '../middleware/context.js'
import type { AuthUser } from '../middleware/context.js'

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

export function userManagementRules(apiPath: string) {
  const api = escapeRegExp(apiPath)
  const userPath = new RegExp(`^${api}/users/([0-9]{1,15})$`)
  const isAdmin = (user: AuthUser | undefined): boolean => user?.admin === true
  return [
    {
      method: 'POST',
      path: new RegExp(`^${api}/users$`),
      allow: isAdmin,
      detail: 'Only administrators can create users.'
    },
    {
      method: 'DELETE',
      path: userPath,
      allow: isAdmin,
      detail: 'Only administrators can delete users.'
    },
    {
      method: 'PATCH',
      path: userPath,
      allow: (user: AuthUser | undefined, req: IncomingMessage): boolean =>
        isAdmin(user) || (user !== undefined && userPath.exec(pathOnly(req.url ?? '/'))?.[1] === String(user.id)),
      detail: 'Only administrators can change other users.'
    }
  ]
}
