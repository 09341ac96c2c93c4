/**
 * Both run stores for the store tests: `describe.each(STORE_KINDS)` runs a test file's contract on SQLite (a
 * temporary directory) and on PostgreSQL (a fresh database of the test server; only where there is one, and CI
 * requires it: test/services/pg.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { DB_FILE } from '../../src/track/store.js';
import { freshDatabase, hasPostgres, type TestDatabase } from './pg.js';

export type StoreKind = 'sqlite' | 'postgres';
export const STORE_KINDS: readonly StoreKind[] = ['sqlite', ...(hasPostgres ? (['postgres'] as const) : [])];

/** A place for one test's store: its spec for `RunStore.open`, and a scratch directory (checkpoints go there too). */
export interface TestStore {
  kind: StoreKind;
  /** The directory (SQLite) or the database URL (PostgreSQL, with `?checkpoints=<dir>`). */
  spec: string;
  /** A temporary directory of the test's own: the SQLite store, and the PostgreSQL store's checkpoints. */
  dir: string;
  /** The database, for PostgreSQL. */
  db: TestDatabase | null;
  /** Runs SQL on the store's tables behind its back, as another program would (`?` placeholders); rows as arrays. */
  sql(text: string, ...params: unknown[]): Promise<unknown[][]>;
  /** Removes the directory and drops the database. */
  drop(): Promise<void>;
}

export async function testStore(kind: StoreKind, prefix = 'gg-store-'): Promise<TestStore> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const db = kind === 'postgres' ? await freshDatabase() : null;
  const spec = db ? `${db.url}?checkpoints=${encodeURIComponent(dir)}` : dir;
  return {
    kind,
    spec,
    dir,
    db,
    sql: (text, ...params) => (db ? pgSql(db.url, text, params) : Promise.resolve(sqliteSql(dir, text, params))),
    async drop() {
      rmSync(dir, { recursive: true, force: true });
      await db?.drop();
    },
  };
}

function sqliteSql(dir: string, text: string, params: unknown[]): unknown[][] {
  const db = new Database(join(dir, DB_FILE));
  try {
    const st = db.prepare(text);
    if (st.reader) return st.raw().all(...params) as unknown[][];
    st.run(...params);
    return [];
  } finally {
    db.close();
  }
}

async function pgSql(url: string, text: string, params: unknown[]): Promise<unknown[][]> {
  let n = 0;
  const client = new pg.Client({ connectionString: url, options: '-c search_path=gradguard' });
  await client.connect();
  try {
    const r = await client.query({ text: text.replace(/\?/g, () => `$${++n}`), values: params, rowMode: 'array' });
    return r.rows;
  } finally {
    await client.end();
  }
}
