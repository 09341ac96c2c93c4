/**
 * PostgreSQL for one test: the `postgres` suite's switch and a fresh database per test, on the server that the
 * globalSetup (test/services/postgres.ts) started or that `GRADGUARD_TEST_PG_URL` names.
 *
 * @example
 * describe.skipIf(!hasPostgres)('on PostgreSQL', () => {
 *   let db: TestDatabase;
 *   beforeEach(async () => { db = await freshDatabase(); });
 *   afterEach(() => db.drop());
 *   it('...', () => { const store = openStore(db.url); ... });
 * });
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { canRun } from '../suites.js';

/** The test server's URL (its superuser, database `postgres`), or undefined where there is none. */
export const PG_URL: string | undefined = process.env.GRADGUARD_TEST_PG_URL;

/** Whether the PostgreSQL tests run here; where CI requires the suite and there is no server, the file fails. */
export const hasPostgres: boolean = canRun(
  'postgres',
  PG_URL !== undefined && PG_URL !== '',
  process.env.GRADGUARD_TEST_PG_MISSING ??
    'no GRADGUARD_TEST_PG_URL (is the postgres globalSetup wired in vitest.config.ts for this project?)',
);

/** A database of its own for one test. */
export interface TestDatabase {
  /** Its URL, with the server's credentials. */
  url: string;
  /** Its name, `gg_test_<16 hex digits>`. */
  name: string;
  /** Drops it (closing whatever connections are left). */
  drop(): Promise<void>;
}

/** Runs `sql` on the server's `postgres` database. */
export async function adminQuery(sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  if (!PG_URL) throw new Error('no PostgreSQL server for the tests (GRADGUARD_TEST_PG_URL)');
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return await client.query(sql, params);
  } finally {
    await client.end();
  }
}

/** Creates an empty database for one test; the URL of `PG_URL` with its name. */
export async function freshDatabase(): Promise<TestDatabase> {
  const name = `gg_test_${randomBytes(8).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = new URL(PG_URL!);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    name,
    drop: () => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).then(() => undefined),
  };
}
