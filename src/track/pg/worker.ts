/**
 * The PostgreSQL store's connection, on a worker thread: it owns one `pg` client and serves the synchronous facade
 * (link.ts) in order. A call is answered on the reply port and signalled through the shared flag (the facade waits
 * on it with Atomics.wait). Logged steps arrive in batches without a call and are written in the background, each
 * batch (and whatever queued while the last one was written) in one statement, so training never waits for the server. Because messages are served in order, any call runs after every step sent before it: a call is a flush.
 */
import { parentPort, workerData } from 'node:worker_threads';
import pg from 'pg';
import { LOCK_CLASS, PG_MIGRATIONS, PG_SCHEMA } from './schema.js';

/** A logged step. */
export interface StepMessage {
  t: 'step';
  rid: number;
  step: number;
  time: number;
  keys: string[];
  values: number[];
  /** The layer set's names (JSON) and the step's layer blob, on monitored steps. */
  names?: string;
  blob?: Uint8Array;
}

/** Logged steps, batched by the facade (those of up to 50 ms), sent without waiting. */
export interface StepsMessage {
  t: 'steps';
  steps: StepMessage[];
}

export interface CallMessage {
  t: 'call';
  op: 'connect' | 'query' | 'tx' | 'close';
  args: unknown[];
}

/** A query of a call: SQL with $n parameters; rows as arrays unless `objects`. */
export interface Statement {
  sql: string;
  params?: unknown[];
  objects?: boolean;
}

export interface QueryResult {
  rows: unknown[];
  rowCount: number;
}

/** An error as it crosses the thread: its message, PostgreSQL's SQLSTATE or Node's code, and gradguard's code. */
export interface WireError {
  message: string;
  code?: string;
  track?: string;
}

export type Reply = { t: 'reply'; ok: true; value: unknown } | { t: 'reply'; ok: false; error: WireError };
/** Sent without a call: a run found removed by a background write, or a background write that failed. */
export type Notice = { t: 'removed'; rid: number } | { t: 'writeError'; error: WireError };

const { flag: flagBuffer, port } = workerData as {
  flag: SharedArrayBuffer;
  port: import('node:worker_threads').MessagePort;
};
const flag = new Int32Array(flagBuffer);
// int8 columns (row ids, steps, times in ms) are safe integers here: read them as numbers, not strings.
pg.types.setTypeParser(20, Number);

let client: pg.Client | null = null;
const queue: (StepMessage | CallMessage)[] = [];
let pumping = false;
const keyIds = new Map<string, number>();
const setIds = new Map<string, number>();
const removed = new Set<number>();

function reply(r: Reply): void {
  port.postMessage(r);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}

function wire(err: unknown): WireError {
  const e = err as { message?: string; code?: string; track?: string };
  return {
    message: e.message ?? String(err),
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
    ...(e.track ? { track: e.track } : {}),
  };
}

function trackError(track: string, message: string): Error {
  return Object.assign(new Error(message), { track });
}

/** Parameters as `pg` takes them: byte arrays that crossed the thread as Uint8Array become Buffers again. */
function params(values: unknown[] | undefined): unknown[] | undefined {
  return values?.map((v) =>
    v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v,
  );
}

async function run(s: Statement): Promise<QueryResult> {
  const values = params(s.params) ?? [];
  const r = s.objects
    ? await client!.query({ text: s.sql, values })
    : await client!.query({ text: s.sql, values, rowMode: 'array' });
  return { rows: r.rows, rowCount: r.rowCount ?? 0 };
}

async function connect(connection: string, readonly: boolean, create: boolean): Promise<number> {
  await client?.end().catch(() => {}); // a reconnect: the old connection is gone or going
  // A host that drops packets fails in 30 s rather than after the kernel's two-minute connect timeout.
  client = new pg.Client({
    connectionString: connection,
    application_name: 'gradguard',
    connectionTimeoutMillis: 30_000,
  });
  client.on('error', () => {}); // a dropped connection fails the next query, which reports it
  await client.connect();
  // A machine that vanishes must not hold its runs' locks (their liveness) for the kernel's default two hours.
  await client.query(`SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 3`);
  await client.query(`SET search_path = ${PG_SCHEMA}`);
  const n = PG_MIGRATIONS.length;
  const version = async (): Promise<number | null> => {
    const meta = await client!.query(`SELECT to_regclass('${PG_SCHEMA}.meta') IS NOT NULL AS ok`);
    if (!meta.rows[0].ok) return null;
    const v = await client!.query(`SELECT value FROM meta WHERE key = 'schema_version'`);
    return v.rows.length ? Number(v.rows[0].value) : null;
  };
  const tooNew = (v: number) =>
    trackError(
      'STORE_TOO_NEW',
      `was written by a newer gradguard (schema ${v}; this one reads up to ${n}); upgrade gradguard`,
    );
  if (readonly) {
    const v = await version();
    if (v === null) throw trackError('NO_STORE', 'has no gradguard run store yet');
    if (v > n) throw tooNew(v);
    await client.query('SET default_transaction_read_only = on');
    return v;
  }
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, 0)', [LOCK_CLASS]);
    let v = await version();
    if (v === null) {
      const other = await client.query(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1`, [PG_SCHEMA]);
      if (other.rows[0].n > 0) {
        throw trackError('BAD_STORE', `has a schema '${PG_SCHEMA}' that is not a gradguard run store`);
      }
      if (!create) throw trackError('NO_STORE', 'has no gradguard run store yet');
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${PG_SCHEMA}`);
      await client.query(`CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)`);
      await client.query(`INSERT INTO meta VALUES ('application', 'gradguard'), ('schema_version', '0')`);
      v = 0;
    }
    if (v > n) throw tooNew(v);
    for (let i = v; i < n; i++) await client.query(PG_MIGRATIONS[i]!);
    if (v < n) await client.query(`UPDATE meta SET value = $1 WHERE key = 'schema_version'`, [String(n)]);
    await client.query('COMMIT');
    return n;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

async function call(m: CallMessage): Promise<unknown> {
  switch (m.op) {
    case 'connect':
      return connect(m.args[0] as string, m.args[1] as boolean, m.args[2] as boolean);
    case 'query':
      return run(m.args[0] as Statement);
    case 'tx': {
      const results: QueryResult[] = [];
      await client!.query('BEGIN');
      try {
        for (const s of m.args as Statement[]) results.push(await run(s));
        await client!.query('COMMIT');
      } catch (err) {
        await client!.query('ROLLBACK').catch(() => {});
        throw err;
      }
      return results;
    }
    case 'close': {
      const c = client;
      client = null;
      await c?.end();
      return null;
    }
  }
}

/** Ids of `names` (metric keys or layer sets), added to `table` when new. */
async function intern(table: 'metric_keys' | 'layer_sets', names: string[], cache: Map<string, number>) {
  const missing = [...new Set(names.filter((n) => !cache.has(n)))];
  if (!missing.length) return;
  const [id, col] = table === 'metric_keys' ? ['kid', 'key'] : ['lsid', 'names'];
  await client!.query(`INSERT INTO ${table} (${col}) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`, [missing]);
  const r = await client!.query(`SELECT ${id} AS id, ${col} AS name FROM ${table} WHERE ${col} = ANY($1)`, [missing]);
  for (const row of r.rows) cache.set(row.name, row.id);
}

/** Writes queued steps in one transaction; a step of a removed run is dropped and the facade told. */
async function writeSteps(batch: StepMessage[]): Promise<void> {
  batch = batch.filter((s) => !removed.has(s.rid));
  if (!batch.length) return;
  await intern(
    'metric_keys',
    batch.flatMap((s) => s.keys),
    keyIds,
  );
  await intern(
    'layer_sets',
    batch.flatMap((s) => (s.names === undefined ? [] : [s.names])),
    setIds,
  );
  // Later writes of the same (run, step, key) win, as INSERT OR REPLACE does in SQLite; one upsert may not touch a
  // row twice, so duplicates are merged here.
  const steps = new Map<string, [number, number, number]>();
  const metrics = new Map<string, [number, number, number, number]>();
  const layers = new Map<string, [number, number, number, Buffer]>();
  for (const s of batch) {
    const at = `${s.rid}:${s.step}`;
    if (!steps.has(at)) steps.set(at, [s.rid, s.step, s.time]);
    for (let i = 0; i < s.keys.length; i++) {
      const kid = keyIds.get(s.keys[i]!)!;
      metrics.set(`${at}:${kid}`, [s.rid, s.step, kid, s.values[i]!]);
    }
    if (s.names !== undefined && s.blob) {
      layers.set(at, [
        s.rid,
        s.step,
        setIds.get(s.names)!,
        Buffer.from(s.blob.buffer, s.blob.byteOffset, s.blob.byteLength),
      ]);
    }
  }
  const cols = <T extends unknown[]>(rows: Iterable<T>, n: number) => {
    const out = Array.from({ length: n }, () => [] as unknown[]);
    for (const r of rows) for (let i = 0; i < n; i++) out[i]!.push(r[i]);
    return out;
  };
  const c = client!;
  const [sr, ss, st] = cols(steps.values(), 3);
  const [mr, ms, mk, mv] = cols(metrics.values(), 4);
  const [lr, ls, li, ld] = cols(layers.values(), 4);
  try {
    // One statement, hence one transaction and one round trip, for the whole batch.
    await c.query(
      `WITH s AS (
         INSERT INTO steps (rid, step, time) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])
         ON CONFLICT DO NOTHING),
       m AS (
         INSERT INTO metrics (rid, step, kid, value)
         SELECT * FROM unnest($4::bigint[], $5::bigint[], $6::int[], $7::float8[])
         ON CONFLICT (rid, step, kid) DO UPDATE SET value = EXCLUDED.value)
       INSERT INTO layer_stats (rid, step, lsid, data)
       SELECT * FROM unnest($8::bigint[], $9::bigint[], $10::int[], $11::bytea[])
       ON CONFLICT (rid, step) DO UPDATE SET lsid = EXCLUDED.lsid, data = EXCLUDED.data`,
      [sr, ss, st, mr, ms, mk, mv, lr, ls, li, ld],
    );
  } catch (err) {
    if ((err as { code?: string }).code !== '23503') throw err;
    // A run was removed (runs rm) while this process wrote it: drop its steps, tell the facade, keep the others.
    const rids = [...new Set(batch.map((s) => s.rid))];
    const alive = await c.query('SELECT rid FROM runs WHERE rid = ANY($1::bigint[])', [rids]);
    const left = new Set(alive.rows.map((r) => r.rid as number));
    for (const rid of rids) {
      if (!left.has(rid)) {
        removed.add(rid);
        port.postMessage({ t: 'removed', rid } satisfies Notice);
      }
    }
    if (left.size < rids.length) await writeSteps(batch);
    else throw err;
  }
}

/** How many messages at the head of the queue are due (all of them: the facade batches the steps). */
let due = 0;

async function pump(): Promise<void> {
  if (pumping) return;
  pumping = true;
  try {
    while (due > 0 && queue.length) {
      if (queue[0]!.t === 'step') {
        let n = 0;
        while (n < due && n < queue.length && queue[n]!.t === 'step') n++;
        const batch = queue.splice(0, n) as StepMessage[];
        due -= n;
        try {
          if (client) await writeSteps(batch);
        } catch (err) {
          port.postMessage({ t: 'writeError', error: wire(err) } satisfies Notice);
        }
        continue;
      }
      const m = queue.shift() as CallMessage;
      due--;
      try {
        reply({ t: 'reply', ok: true, value: await call(m) });
      } catch (err) {
        reply({ t: 'reply', ok: false, error: wire(err) });
      }
    }
  } finally {
    pumping = false;
  }
}

parentPort!.on('message', (m: StepsMessage | CallMessage) => {
  if (m.t === 'steps') queue.push(...m.steps);
  else queue.push(m);
  due = queue.length;
  void pump();
});
