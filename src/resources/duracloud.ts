/** `duracloud/providerAccounts` and `duracloud/spaces`: look-ups for the store dialog (spec §3.10, §3.11, §4.8). */
import type { Call, Operation, Reply } from './operation.js'
import { lookupProviderAccounts, lookupSpaces, parseLookupParams } from './duracloud-lookup.js'

/** Look-up parameters come from the query (GET, legacy) or a URL-encoded form body (POST, preferred) [D3]. */
function paramsOf(call: Call): URLSearchParams | Record<string, unknown> {
  if (typeof call.body === 'object' && call.body !== null) return call.body as Record<string, unknown>
  const url = call.req.url ?? ''
  const q = url.indexOf('?')
  return new URLSearchParams(q === -1 ? '' : url.slice(q + 1))
}

const providerAccounts: Operation = {
  produces: 'provideraccounts',
  async run(call: Call): Promise<Reply> {
    const accounts = await lookupProviderAccounts(parseLookupParams(paramsOf(call)), call.services.outbound)
    return {
      status: 200,
      body: {
        kind: 'list', plural: 'providerAccounts', singular: 'providerAccount',
        items: accounts.map((a) => ({ id: a.id, primary: a.primary, type: a.type }))
      }
    }
  }
}

const spaces: Operation = {
  produces: 'spaces',
  async run(call: Call): Promise<Reply> {
    const found = await lookupSpaces(parseLookupParams(paramsOf(call)), call.services.outbound)
    return { status: 200, body: { kind: 'list', plural: 'spaces', singular: 'space', items: found.map((s) => ({ id: s.id })) } }
  }
}

export const getProviderAccounts = providerAccounts
export const postProviderAccounts: Operation = { ...providerAccounts, consumes: 'form' }
export const getSpaces = spaces
export const postSpaces: Operation = { ...spaces, consumes: 'form' }
