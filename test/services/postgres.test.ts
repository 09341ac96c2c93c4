import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { adminQuery, freshDatabase, hasPostgres, PG_URL, type TestDatabase } from './pg.js';
import setup from './postgres.js';

describe.skipIf(!hasPostgres)('the PostgreSQL test harness', () => {
  let a: TestDatabase;
  let b: TestDatabase;
  beforeEach(async () => {
    [a, b] = await Promise.all([freshDatabase(), freshDatabase()]);
  });
  afterEach(async () => {
    await Promise.all([a.drop(), b.drop()]);
  });

  async function query(url: string, sql: string): Promise<pg.QueryResult> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return await client.query(sql);
    } finally {
      await client.end();
    }
  }

  it('gives each test a database of its own, which the other does not see', async () => {
    await query(a.url, 'CREATE TABLE t (x int); INSERT INTO t VALUES (42)');
    expect((await query(a.url, 'SELECT x FROM t')).rows).toEqual([{ x: 42 }]);
    await expect(query(b.url, 'SELECT x FROM t')).rejects.toThrow(/relation "t" does not exist/);
    expect((await query(a.url, 'SELECT current_database() AS d')).rows[0].d).toBe(a.name);
  });

  it('drops a database even while a client is still connected to it', async () => {
    const client = new pg.Client({ connectionString: a.url });
    await client.connect();
    client.on('error', () => {}); // the server ends this connection when the database goes
    await a.drop();
    const left = await adminQuery('SELECT count(*)::int AS n FROM pg_database WHERE datname = $1', [a.name]);
    expect(left.rows[0].n).toBe(0);
    await client.end().catch(() => {});
  });

  it('listens on loopback, with a password', async () => {
    const url = new URL(PG_URL!);
    expect(url.hostname).toBe('127.0.0.1');
    url.password = 'wrong';
    await expect(query(url.toString(), 'SELECT 1')).rejects.toThrow(/password authentication failed/);
  });

  it('starts nothing when GRADGUARD_TEST_PG_URL is set (the server given is used)', async () => {
    // This process has the variable from the globalSetup: a second setup must leave it, and its teardown must leave
    // the server it did not start running.
    const teardown = await setup();
    expect(process.env.GRADGUARD_TEST_PG_URL).toBe(PG_URL);
    teardown();
    expect(process.env.GRADGUARD_TEST_PG_URL).toBe(PG_URL);
    expect((await adminQuery('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });
});
