import { describe, expect, it } from 'vitest';
import { MIGRATIONS, SCHEMA_VERSION } from '../schema.js';
import { PG_MIGRATIONS } from './schema.js';

describe('the PostgreSQL schema', () => {
  it('has a migration for every SQLite one, at the same index (one SCHEMA_VERSION names both)', () => {
    // A new SQLite migration fails this until its PostgreSQL twin is appended to pg/schema.ts (CONTRIBUTING.md).
    expect(PG_MIGRATIONS).toHaveLength(MIGRATIONS.length);
    expect(PG_MIGRATIONS).toHaveLength(SCHEMA_VERSION);
    // every table SQLite creates, PostgreSQL creates too (in the same migration)
    const tables = (sql: string) =>
      [...sql.matchAll(/CREATE TABLE (\w+)/g)].map((m) => m[1]).filter((t) => !t!.endsWith('_v2'));
    MIGRATIONS.forEach((sqlite, i) => {
      expect(tables(PG_MIGRATIONS[i]!), `migration ${i + 1}`).toEqual(tables(sqlite));
    });
  });
});
