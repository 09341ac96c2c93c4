/**
 * memory.ts in a browser build: a page cannot see the machine's RAM, and the wasm backend's memory stops at 4 GiB
 * (wasm32), so that is the memory a run may count on; less where the browser reports less (`navigator.deviceMemory`,
 * in GiB, rounded down by the browser).
 */
const WASM32_BYTES = 2 ** 32;

/** The memory a page may plan for, in bytes. */
export function totalMemoryBytes(): number {
  const gib = typeof navigator !== 'undefined' ? (navigator as { deviceMemory?: number }).deviceMemory : undefined;
  return typeof gib === 'number' && gib > 0 ? Math.min(WASM32_BYTES, gib * 2 ** 30) : WASM32_BYTES;
}
