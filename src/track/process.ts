/** Whether a run's writer is still alive: its pid, and its start time so that a recycled pid is not taken for it. */
import { readFileSync } from 'node:fs';

/**
 * Whether process `pid` on this host is alive and is the process that started at `procStart` (so a recycled pid is
 * not taken for the run's writer). A zombie counts as dead.
 */
export function processAlive(pid: number, procStart: string | null = null): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    if ((err as { code?: string }).code !== 'EPERM') return false;
  }
  const stat = readProcStat(pid);
  if (stat === null) return true;
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return procStart === null || stat.start === procStart;
}

/** A process's state and start time (clock ticks after boot) from Linux's /proc; null elsewhere. */
function readProcStat(pid: number): { state: string; start: string } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    const start = fields[19];
    return state !== undefined && start !== undefined ? { state, start } : null;
  } catch {
    return null;
  }
}

export function readProcStart(pid: number): string | null {
  return readProcStat(pid)?.start ?? null;
}
