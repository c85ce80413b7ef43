export const vj = (name: string): string => `application/vnd.fcrepo-cloudsync.${name}+json`
export const vx = (name: string): string => `application/vnd.fcrepo-cloudsync.${name}+xml`
