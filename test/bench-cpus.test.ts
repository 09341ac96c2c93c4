/**
 * The bench's CPU list (bench/processes.ts): the CPUs a 1-thread round's two sides are pinned to in turn come from
 * the kernel's Cpus_allowed_list, and a list it cannot read leaves the run unpinned rather than pinned wrongly.
 */
import { describe, expect, it } from 'vitest';
import { allowedCpus, parseCpuList } from '../bench/processes.js';

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
    expect(parseCpuList('4-2')).toEqual([]);
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
});
