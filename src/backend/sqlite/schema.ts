/**
 * The database schema, versioned with `PRAGMA user_version`.
 *
 * Each entry of MIGRATIONS moves the schema one version up and runs in its
 * own immediate transaction together with the version bump, so a crash or a
 * second process opening the same file at the same time never leaves a
 * half-migrated database. Append new migrations; never edit shipped ones.
 */
import type { Database } from './db.js'

const MIGRATIONS: readonly string[] = [
  // 1 — initial schema. AUTOINCREMENT everywhere: ids are never reused (spec §4.1).
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE service (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    initialized INTEGER NOT NULL
  );
  INSERT INTO service (id, initialized) VALUES (1, 0);

  CREATE TABLE users (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    name     TEXT NOT NULL UNIQUE,
    password TEXT NOT NULL,
    admin    INTEGER NOT NULL,
    enabled  INTEGER NOT NULL
  );

  CREATE TABLE object_sets (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    data TEXT NOT NULL
  );
  INSERT INTO object_sets (id, name, type, data) VALUES (1, 'All Objects', 'pidPattern', '*');

  -- data is encrypted (secrets.ts): it holds repository passwords.
  CREATE TABLE object_stores (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    data TEXT NOT NULL
  );

  CREATE TABLE tasks (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL UNIQUE,
    type          TEXT NOT NULL,
    state         TEXT NOT NULL,
    schedule      TEXT,
    data          TEXT NOT NULL,
    active_log_id INTEGER REFERENCES task_logs (id) ON DELETE SET NULL
  );

  CREATE TABLE task_logs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id     INTEGER NOT NULL REFERENCES tasks (id),
    result_type TEXT NOT NULL,
    start_date  INTEGER NOT NULL,
    finish_date INTEGER
  );
  CREATE INDEX task_logs_task ON task_logs (task_id);

  -- The "in use" relation (spec §4.9). RESTRICT-by-default foreign keys back
  -- up the explicit checks: a referenced set or store cannot be deleted.
  CREATE TABLE task_set_deps (
    task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    set_id  INTEGER NOT NULL REFERENCES object_sets (id),
    PRIMARY KEY (task_id, set_id)
  ) WITHOUT ROWID;
  CREATE INDEX task_set_deps_set ON task_set_deps (set_id);

  CREATE TABLE task_store_deps (
    task_id  INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    store_id INTEGER NOT NULL REFERENCES object_stores (id),
    PRIMARY KEY (task_id, store_id)
  ) WITHOUT ROWID;
  CREATE INDEX task_store_deps_store ON task_store_deps (store_id);

  -- id is SHA-256 of the session id: a leaked database file does not leak
  -- usable session cookies.
  CREATE TABLE sessions (
    id         BLOB PRIMARY KEY,
    user_key   TEXT,
    record     TEXT NOT NULL,
    expires_at INTEGER
  ) WITHOUT ROWID;
  CREATE INDEX sessions_user ON sessions (user_key);
  CREATE INDEX sessions_expiry ON sessions (expires_at);
  `
]

/**
 * The schema version this code writes (stored in `PRAGMA user_version`).
 *
 * @example
 * db.pragma('user_version', { simple: true }) === SCHEMA_VERSION
 */
export const SCHEMA_VERSION = MIGRATIONS.length

/**
 * Bring the database up to {@link SCHEMA_VERSION}. Throws if it is newer than this code.
 *
 * @example
 * migrate(new SqliteDatabase(file))
 */
export function migrate(db: Database): void {
  const version = () => db.pragma('user_version', { simple: true }) as number
  const step = db.transaction(() => {
    // Re-read inside the write lock: another process may have migrated meanwhile.
    const current = version()
    if (current >= SCHEMA_VERSION) return false
    db.exec(MIGRATIONS[current]!)
    db.pragma(`user_version = ${current + 1}`)
    return true
  })
  const found = version()
  if (found > SCHEMA_VERSION) {
    throw new Error(`The CloudSync database has schema version ${found}, but this cloudsync-kit only knows version ${SCHEMA_VERSION}. Upgrade cloudsync-kit or point it at another data directory.`)
  }
  while (step.immediate()) { /* one version per transaction */ }
}
