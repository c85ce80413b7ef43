/**
 * The slice of better-sqlite3 this backend uses, typed locally.
 *
 * The driver ships no type declarations; describing the few calls we make
 * here keeps the build strict without an ambient `declare module` that would
 * clash with `@types/better-sqlite3` if a host application installs it.
 */
import { createRequire } from 'node:module'

export interface RunResult {
  changes: number
  lastInsertRowid: number | bigint
}

/** A prepared statement. Prepare once, run many times. */
export interface Statement {
  run(...params: unknown[]): RunResult
  get<R = unknown>(...params: unknown[]): R | undefined
  all<R = unknown>(...params: unknown[]): R[]
}

/** A function wrapped in BEGIN … COMMIT (ROLLBACK when it throws). */
export interface Transaction<F extends (...args: never[]) => unknown> {
  (...args: Parameters<F>): ReturnType<F>
  /** BEGIN IMMEDIATE: take the write lock up front, so read-check-write cannot interleave with another connection. */
  immediate(...args: Parameters<F>): ReturnType<F>
}

export interface Database {
  prepare(sql: string): Statement
  exec(sql: string): Database
  pragma(source: string, options?: { simple?: boolean }): unknown
  transaction<F extends (...args: never[]) => unknown>(fn: F): Transaction<F>
  close(): Database
  readonly open: boolean
  readonly inTransaction: boolean
}

type DatabaseConstructor = new (filename: string, options?: { timeout?: number }) => Database

const require = createRequire(import.meta.url)

/** The better-sqlite3 `Database` class. */
export const SqliteDatabase = require('better-sqlite3') as DatabaseConstructor

/** Whether `id` can name a row: a positive safe integer. */
export function isId(id: unknown): id is number {
  return typeof id === 'number' && Number.isSafeInteger(id) && id > 0
}

/** Whether `err` is a UNIQUE constraint violation from SQLite. */
export function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'SQLITE_CONSTRAINT_UNIQUE'
}

/** Whether `err` is a FOREIGN KEY constraint violation from SQLite. */
export function isForeignKeyViolation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'SQLITE_CONSTRAINT_FOREIGNKEY'
}
