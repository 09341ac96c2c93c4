/**
 * The synchronous face of the PostgreSQL connection: a worker thread (worker.ts) owns the `pg` client, and this side
 * posts it messages. A call waits for its answer with Atomics.wait on a shared flag and takes it with
 * receiveMessageOnPort, so the run store keeps the synchronous API that the trainer, the CLI and the dashboard use;
 * logged steps are posted without waiting.
 *
 * NOTE: why a thread rather than async all the way up: every caller of the store (train, runs, export, report,
 * dashboard, sweep) is synchronous, and a synchronous store keeps them unchanged. A blocked call costs a round trip
 * to the server (~0.1-0.5 ms on loopback), paid by reads and rare writes; steps, the one frequent write, do not wait.
 */
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type {
  CallMessage,
  Notice,
  QueryResult,
  Reply,
  Statement,
  StepMessage,
  StepsMessage,
  WireError,
} from './worker.js';

/** How long a call may wait for the worker before the store gives up (a query that never returns, a dead thread). */
const CALL_TIMEOUT_MS = 5 * 60_000;

export class PgLink {
  private readonly worker: Worker;
  private readonly flag = new Int32Array(new SharedArrayBuffer(4));
  private readonly port: MessagePort;
  /** Runs whose rows a background write found removed, and background write failures, not yet taken. */
  readonly removed = new Set<number>();
  private writeError: WireError | null = null;
  private dead: WireError | null = null;

  constructor() {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const here = new URL(import.meta.url);
    const isTs = here.pathname.endsWith('.ts');
    const url = new URL(`./worker.${isTs ? 'ts' : 'js'}`, here);
    const workerData = { flag: this.flag.buffer, port: port2 };
    // NOTE: running from TypeScript sources (tests, tsx), the worker registers tsx's loader itself before importing
    this.worker = isTs
      ? new Worker(
          `(async () => { const { register } = await import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}); register(); await import(${JSON.stringify(url.href)}); })();`,
          { eval: true, workerData, transferList: [port2] },
        )
      : new Worker(url, { workerData, transferList: [port2] });
    this.worker.on('error', (err) => {
      this.dead = { message: `the PostgreSQL connection thread failed: ${err.message}` };
    });
    // The thread must not keep a process alive that is done (a store left open at exit loses unflushed steps only).
    this.worker.unref();
  }

  /** Posts steps to be written in the background. */
  send(steps: StepMessage[]): void {
    this.drain();
    this.worker.postMessage({ t: 'steps', steps } satisfies StepsMessage);
  }

  /** Runs `op` on the worker and waits for its answer; throws its error (as an Error with `code` and `track`). */
  call<T>(op: CallMessage['op'], ...args: unknown[]): T {
    if (this.dead) throw wireToError(this.dead);
    Atomics.store(this.flag, 0, 0);
    this.worker.postMessage({ t: 'call', op, args } satisfies CallMessage);
    const deadline = Date.now() + CALL_TIMEOUT_MS;
    for (;;) {
      const got = Atomics.wait(this.flag, 0, 0, 1000);
      const reply = this.drain();
      if (reply) {
        if (reply.ok) return reply.value as T;
        throw wireToError(reply.error);
      }
      if (got !== 'timed-out' && got !== 'not-equal') continue;
      if (Date.now() > deadline) {
        throw wireToError({ message: `no answer from the PostgreSQL store in ${CALL_TIMEOUT_MS / 1000} s` });
      }
    }
  }

  query(s: Statement): QueryResult {
    return this.call<QueryResult>('query', s);
  }

  /** Runs statements in one transaction. */
  tx(...statements: Statement[]): QueryResult[] {
    return this.call<QueryResult[]>('tx', ...statements);
  }

  /** Takes the error of a failed background write, if any. */
  takeWriteError(): WireError | null {
    this.drain();
    const e = this.writeError;
    this.writeError = null;
    return e;
  }

  /** Ends the connection and the thread. */
  close(): void {
    try {
      this.call('close');
    } finally {
      void this.worker.terminate();
    }
  }

  /** Takes the messages waiting on the reply port: notices are kept, a reply is returned. */
  private drain(): Reply | null {
    for (;;) {
      const got = receiveMessageOnPort(this.port);
      if (got === undefined) return null;
      const m = got.message as Reply | Notice;
      if (m.t === 'reply') return m;
      if (m.t === 'removed') this.removed.add(m.rid);
      else if (this.writeError === null) this.writeError = m.error;
    }
  }
}

export function wireToError(e: WireError): Error & { code?: string; track?: string } {
  return Object.assign(new Error(e.message), {
    ...(e.code ? { code: e.code } : {}),
    ...(e.track ? { track: e.track } : {}),
  });
}
