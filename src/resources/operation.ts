/** What a resource operation receives and returns. */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AuthUser } from '../middleware/context.js'
import type { Backend } from '../backend/types.js'
import type { Links } from './links.js'
import type { VendorName } from './media-types.js'
import type { Representation } from './representation.js'
import type { OutboundPolicy } from './outbound.js'

/** Everything the resources need from the host, fixed when `cloudsync()` is built. */
export interface ApiServices {
  backend: Backend
  /** Absolute directories filesystem stores must live in (spec §4.5). */
  storeRoots: readonly string[]
  /** Policy for the DuraCloud look-ups (spec §4.8). */
  outbound: OutboundPolicy
  /** Called after a task was created or its state changed (wakes the task manager). */
  onTaskChanged(): void
  /** Called after a user was changed or deleted (drops cached credential checks). */
  onUsersChanged(): void
}

export interface Call {
  req: IncomingMessage
  res: ServerResponse
  params: string[]
  /** The authenticated user (undefined only on open routes). */
  user: AuthUser | undefined
  /** The parsed request body (operations with `consumes`). */
  body: unknown
  links: Links
  services: ApiServices
}

export type Reply =
  | {
      status: 200 | 201
      body: Representation
      location?: string
      contentLocation?: string
      /**
       * The backend value the body was built from. When it is frozen, equal
       * sources give equal bodies for the same links, and a read reuses the
       * serialized text and ETag (see representation-cache.ts).
       */
      source?: object
    }
  | { status: 204 }
  | { status: 200; text: string; cacheable: boolean }
  | { status: 200; stream: NodeJS.ReadableStream }

export interface Operation {
  /** Vendor name of the produced types (spec §2.2), or `text` for `text/plain` only. */
  produces?: VendorName | 'text'
  /** Vendor name of the accepted body types (spec §2.5), or `form` for URL-encoded forms. */
  consumes?: VendorName | 'form'
  /** Operation-level permission check evaluated after routing (spec §1.4 precedence: 403 before 415). */
  run(call: Call): Promise<Reply>
}
