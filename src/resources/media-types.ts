/** The CloudSync media types (spec §2). */

export const JSON_TYPE = 'application/json'
export const XML_TYPE = 'application/xml'
export const TEXT_TYPE = 'text/plain; charset=UTF-8'
export const FORM_TYPE = 'application/x-www-form-urlencoded'
const VENDOR_PREFIX = 'application/vnd.fcrepo-cloudsync.'

/** Names of the vendor media types (lower case, spec §2.1). */
export type VendorName =
  | 'serviceinfo' | 'serviceinit' | 'user' | 'users' | 'task' | 'tasks'
  | 'objectset' | 'objectsets' | 'objectstore' | 'objectstores'
  | 'tasklog' | 'tasklogs' | 'provideraccounts' | 'spaces'

export function vendorJson(name: VendorName): string {
  return `${VENDOR_PREFIX}${name}+json`
}

export function vendorXml(name: VendorName): string {
  return `${VENDOR_PREFIX}${name}+xml`
}

const producedCache = new Map<VendorName, readonly string[]>()
const consumedCache = new Map<VendorName, readonly string[]>()

/** The four types a JSON/XML operation produces, in preference order (spec §2.2). */
export function produced(name: VendorName): readonly string[] {
  let types = producedCache.get(name)
  if (types === undefined) {
    types = Object.freeze([JSON_TYPE, XML_TYPE, vendorJson(name), vendorXml(name)])
    producedCache.set(name, types)
  }
  return types
}

/** The body types an operation accepts: the vendor pair plus plain JSON/XML (spec §2.5). */
export function consumed(name: VendorName): readonly string[] {
  let types = consumedCache.get(name)
  if (types === undefined) {
    types = Object.freeze([vendorJson(name), vendorXml(name), JSON_TYPE, XML_TYPE])
    consumedCache.set(name, types)
  }
  return types
}

/** Whether a chosen media type is one of the XML family. */
export function isXmlType(type: string): boolean {
  return type.endsWith('xml')
}
