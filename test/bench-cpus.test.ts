/**
 * The bench's pinning (bench/processes.ts): the CPUs a 1-thread round's two sides are pinned to in turn come from the
 * kernel's Cpus_allowed_list (a list it cannot read leaves the run unpinned rather than pinned wrongly), and pinTo
 * pins every thread of a worker's process, not its main thread alone.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Worker } from '../bench/machine.js';
import { allowedCpus, parseCpuList, pinTo } from '../bench/processes.js';

describe('bench: the CPUs to pin 1-thread rounds to', () => {
  it('reads the kernel list format: single CPUs and ranges, in order', () => {
    expect(parseCpuList('0-1')).toEqual([0, 1]);
    expect(parseCpuList('0')).toEqual([0]);
    expect(parseCpuList('0,2-4,8')).toEqual([0, 2, 3, 4, 8]);
    expect(parseCpuList(' 3-3 ')).toEqual([3]);
  });

  it('gives no CPUs (no pinning) for a list it cannot read', () => {
    expect(parseCpuList('')).toEqual([]);
    expect(parseCpuList('0-')).toEqual([]);
    expect(parseCpuList('1,4-2')).toEqual([]);
    expect(parseCpuList('0,x')).toEqual([]);
  });

  it("lists this process's own CPUs where the kernel says them", () => {
    const cpus = allowedCpus();
    // /proc/self/status exists on Linux; elsewhere the bench runs unpinned
    if (process.platform === 'linux') {
      expect(cpus.length).toBeGreaterThan(0);
      expect(new Set(cpus).size).toBe(cpus.length);
    } else expect(cpus).toEqual([]);
  });

  it.skipIf(process.platform !== 'linux')('pins every thread of a process to the CPU asked for', async () => {
    const cpus = allowedCpus();
    const cpu = cpus[cpus.length - 1]!;
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    const pid = child.pid!;
    const tasks = () => readdirSync(`/proc/${pid}/task`);
    const allowed = (tid: string) =>
      parseCpuList(/^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))![1]!);
    try {
      // node's own threads up first (V8's workers, libuv's), so that pinning the main thread alone would show
      while (tasks().length < 2) await new Promise((r) => setTimeout(r, 10));
      expect(pinTo([{ pid } as Worker], cpu)).toBe(true);
      for (const tid of tasks()) expect(allowed(tid), `thread ${tid}`).toEqual([cpu]);
      // a worker without a process is passed over; taskset refusing (a CPU that is not there) says false
      expect(pinTo([{ pid: undefined } as Worker], cpu)).toBe(true);
      expect(pinTo([{ pid } as Worker], 4000)).toBe(false);
    } finally {
      child.kill();
    }
  });
});
