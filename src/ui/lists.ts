/**
 * CloudSync default UI — loading object sets and object stores, which three
 * panels show (the sets, the stores, and the tasks that name them).
 */
/// <reference path="../../dist/public/js/cloudsync-api.d.ts" />
import { publish, same, state } from './state.js'

let loaded = false

/**
 * Whether sets and stores have been loaded once (panels say "Loading…" before).
 *
 * @example
 * if (!listsLoaded()) return
 */
export function listsLoaded(): boolean {
  return loaded
}

/**
 * Load the sets and stores; publish `lists` when they changed. Resolves with
 * whether they changed.
 *
 * @example
 * loadSetsAndStores().then(() => openTaskEditor(undefined, button))
 */
export function loadSetsAndStores(): Promise<boolean> {
  const client = state.client
  return Promise.all([client.promises.listObjectSets(), client.promises.listObjectStores()]).then(([s, o]) => {
    const changed = !loaded || !same(state.sets, s.objectSets) || !same(state.stores, o.objectStores)
    loaded = true
    state.sets = s.objectSets
    state.stores = o.objectStores
    if (changed) publish('lists')
    return changed
  })
}
