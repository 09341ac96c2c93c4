/**
 * What ends a training session early and cleanly: a stop signal (Ctrl+C, SIGTERM from a scheduler or a container
 * stop, SIGHUP from a closed terminal), or its run removed from the store by `gradguard runs rm --force` while it
 * trains. Either way the trainer stops after the current step; a signal writes a checkpoint and marks the run
 * interrupted, a removed run gets nothing more written (no metrics, no checkpoints).
 */
import { rmSync } from 'node:fs';
import type { RunStore } from '../track/store.js';
import { type RunSummary, TrackError } from '../track/types.js';
import type { Config } from './config.js';
import { type CheckpointHook, NonFiniteError, type TrainSummary } from './trainer.js';

/** The signals that stop a run cleanly: a checkpoint is written and the run is marked interrupted. */
export const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
/** Default of `train.checkpointMinutes`: a checkpoint at most this many minutes of training apart. */
export const DEFAULT_CHECKPOINT_MINUTES = 5;

export class SessionGuard {
  /** Whether the trainer should stop before its next step. */
  interrupted = false;
  /** The stop signal received, if any. */
  stopSignal: NodeJS.Signals | null = null;
  /** Whether the run was removed from the store while training: nothing more is written for it. */
  removed = false;
  private readonly onSignal = (signal: NodeJS.Signals) => {
    if (this.stopSignal === null) this.log(`gradguard: ${signal}: stopping after this step (writing a checkpoint)`);
    this.stopSignal = signal;
    this.interrupted = true;
  };

  constructor(
    private readonly store: RunStore | null,
    private readonly runId: string | undefined,
    private readonly log: (line: string) => void,
  ) {}

  /** Listens for the stop signals (until `dispose`). */
  listen(): void {
    for (const sig of STOP_SIGNALS) process.on(sig, this.onSignal);
  }

  dispose(): void {
    for (const sig of STOP_SIGNALS) process.removeListener(sig, this.onSignal);
  }

  /** Runs a write of the run into the store; a run removed meanwhile stops the session (one warning) instead. */
  write(fn: (store: RunStore, runId: string) => void): void {
    if (this.removed || !this.store || !this.runId) return;
    try {
      fn(this.store, this.runId);
    } catch (e) {
      if (!(e instanceof TrackError) || e.code !== 'RUN_REMOVED') throw e;
      this.markRemoved(e.message);
    }
  }

  /** Whether the run is still in the store (checked before each checkpoint, so none is written for a removed run). */
  readonly stillStored = (): boolean => {
    if (!this.removed && this.store && this.runId && !this.store.hasRun(this.runId)) {
      this.markRemoved(
        `run ${this.runId} was removed from the run store ${this.store.path} (gradguard runs rm) while it trained`,
      );
    }
    return !this.removed;
  };

  /** Why the run ended, when the guard ended it; else `trainerReason`. */
  reason(trainerReason: string | undefined): string | undefined {
    if (this.removed) return 'the run was removed from the store';
    return this.stopSignal ? `stopped by ${this.stopSignal}` : trainerReason;
  }

  /**
   * Records the run's end by an error, with its message (when the store still can: not on a full disk): diverged when
   * `train.onNonFinite: raise` stopped it at a NaN or Inf (the CLI exits 3 for both), failed otherwise.
   */
  failed(error: unknown): void {
    const status = error instanceof NonFiniteError ? 'diverged' : 'failed';
    try {
      this.write((st, id) =>
        st.finishRun(id, status, { error: error instanceof Error ? error.message : String(error) }),
      );
    } catch {
      // the store cannot record it (a full disk): the error itself says what happened; the run reads back interrupted
    }
  }

  /** Records the run's end: its status, final metrics, verdict, duration and step counts. */
  finished(summary: TrainSummary, verdict: string, extra: RunSummary = {}): void {
    const metrics: Record<string, number> = { 'test/loss': summary.test.loss, 'train/loss': summary.finalLoss };
    if (summary.test.accuracy !== undefined) metrics['test/accuracy'] = summary.test.accuracy;
    this.write((st, id) =>
      st.finishRun(id, summary.status, {
        ...extra,
        metrics,
        verdict,
        durationMs: Math.round(summary.seconds * 1000),
        steps: summary.steps,
        stepsSkipped: summary.skippedSteps,
        stepsClipped: summary.clippedSteps,
        ...(summary.reason ? { reason: summary.reason } : {}),
      }),
    );
  }

  /**
   * Removes the checkpoint directory of a removed run (a checkpoint being written as `runs rm` ran may have made it
   * again). @returns null, the session's last checkpoint now
   */
  dropCheckpoints(dir: string | null): null {
    if (dir) rmSync(dir, { recursive: true, force: true });
    return null;
  }

  private markRemoved(message: string): void {
    if (this.removed) return;
    this.removed = true;
    this.interrupted = true;
    this.log(`warning: ${message}; stopping`);
  }
}

/**
 * The session's checkpoints, into `dir` (the run's directory in the store): every epoch, every
 * `train.checkpointEvery` steps, at most `train.checkpointMinutes` apart, and at the end (a stop signal included);
 * the newest `train.keepCheckpoints` are kept. None while the guard says the run was removed.
 */
export function sessionCheckpoints(
  config: Config,
  dir: string,
  runId: string | undefined,
  guard: SessionGuard,
): CheckpointHook {
  return {
    dir,
    everySteps: config.train.checkpointEvery,
    everyEpoch: true,
    everySeconds: (config.train.checkpointMinutes ?? DEFAULT_CHECKPOINT_MINUTES) * 60,
    keep: config.train.keepCheckpoints,
    runId,
    active: guard.stillStored,
  };
}
