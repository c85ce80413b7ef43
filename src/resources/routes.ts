/** The CloudSync API's routes (spec §1.2), below the API root. */
import type { Route } from './router.js'
import { getService, initService } from './service.js'
import { listUsers, createUser, getCurrentUser, getUser, updateUser, deleteUser } from './users.js'
import { listTasks, createTask, getTask, updateTask, deleteTask } from './tasks.js'
import { listObjectSets, createObjectSet, getObjectSet, updateObjectSet, deleteObjectSet } from './object-sets.js'
import { listObjectStores, createObjectStore, getObjectStore, deleteObjectStore } from './object-stores.js'
import { listTaskLogs, getTaskLog, getTaskLogContent, deleteTaskLog } from './task-logs.js'
import { getProviderAccounts, postProviderAccounts, getSpaces, postSpaces } from './duracloud.js'

export const SERVICE_PATH = /^\/service$/

export const API_ROUTES: readonly Route[] = [
  { pattern: /^\/users$/, methods: { GET: listUsers, POST: createUser } },
  { pattern: /^\/tasks$/, methods: { GET: listTasks, POST: createTask } },
  { pattern: /^\/taskLogs$/, methods: { GET: listTaskLogs } },
  { pattern: /^\/objectSets$/, methods: { GET: listObjectSets, POST: createObjectSet } },
  { pattern: /^\/objectStores$/, methods: { GET: listObjectStores, POST: createObjectStore } },
  { pattern: /^\/users\/current$/, methods: { GET: getCurrentUser } },
  { pattern: /^\/users\/([0-9]{1,15})$/, methods: { GET: getUser, PATCH: updateUser, DELETE: deleteUser } },
  { pattern: /^\/tasks\/([0-9]{1,15})$/, methods: { GET: getTask, PATCH: updateTask, DELETE: deleteTask } },
  { pattern: /^\/objectSets\/([0-9]{1,15})$/, methods: { GET: getObjectSet, PATCH: updateObjectSet, DELETE: deleteObjectSet } },
  { pattern: /^\/objectStores\/([0-9]{1,15})$/, methods: { GET: getObjectStore, DELETE: deleteObjectStore } },
  { pattern: /^\/taskLogs\/([0-9]{1,15})$/, methods: { GET: getTaskLog, DELETE: deleteTaskLog } },
  // The legacy `taskLogs/{id}.json/content` form is served too [D19].
  { pattern: /^\/taskLogs\/([0-9]{1,15})(?:\.json|\.xml)?\/content$/, methods: { GET: getTaskLogContent } },
  { pattern: SERVICE_PATH, open: true, methods: { GET: getService, POST: initService } },
  { pattern: /^\/duracloud\/providerAccounts$/, methods: { GET: getProviderAccounts, POST: postProviderAccounts } },
  { pattern: /^\/duracloud\/spaces$/, methods: { GET: getSpaces, POST: postSpaces } }
]
