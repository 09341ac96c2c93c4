/**
 * Ops must not hold a `Float32Array` view across an allocation: on the wasm backend every buffer lives in the module's
 * linear memory, and `memory.grow` detaches every existing view (a detached view reads as empty, so values turn into
 * NaN or garbage). This suite stands in a backend whose memory grows, and so detaches every view, on EVERY fresh
 * allocation (the worst case of wasm), then runs the PyTorch fixtures on it.
 */
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { useBackend } from '../src/backend/index.js';
import { BufferPool, JsBackend } from '../src/backend/js.js';
import type { Backend, BackendName, Buf } from '../src/backend/types.js';
import { tensor } from '../src/tensor/tensor.js';
import { checkFixture, fixtures, TOL } from './parity.js';

/** One growable block of memory, as a wasm module's: growing copies it and detaches the old one. */
class GrowingMemory {
  buffer = new ArrayBuffer(0);
  grow(bytes: number): number {
    const ptr = this.buffer.byteLength;
    const next = new ArrayBuffer(ptr + bytes);
    new Uint8Array(next).set(new Uint8Array(this.buffer));
    // transferring the old buffer detaches it and every view over it, as WebAssembly.Memory.grow does
    structuredClone(this.buffer, { transfer: [this.buffer] });
    this.buffer = next;
    return ptr;
  }
}

class GrowingBuf implements Buf {
  constructor(
    private readonly mem: GrowingMemory,
    readonly ptr: number,
    readonly size: number,
  ) {}
  get data(): Float32Array {
    return new Float32Array(this.mem.buffer, this.ptr, this.size);
  }
}

/** The js kernels over wasm-like memory that grows on every allocation; nothing is ever reused. */
class GrowingBackend extends JsBackend implements Backend {
  override readonly name: BackendName = 'wasm';
  mem = new GrowingMemory();
  protected override readonly pool = new BufferPool<Buf>(
    (size) => new GrowingBuf(this.mem, this.mem.grow(size * 4), size),
  );
  override free(_buf: Buf): void {}
  /** Starts an empty memory (between tests, so the copies stay small). */
  reset(): void {
    this.mem = new GrowingMemory();
  }
}

const growing = new GrowingBackend();
vi.mock('../src/backend/wasm.js', () => ({ createWasmBackend: () => growing }));

describe('ops on a backend whose memory grows on every allocation', () => {
  beforeAll(() => {
    expect(useBackend('wasm')).toBe(growing);
  });
  beforeEach(() => {
    growing.reset();
  });

  it('the stand-in really detaches views when it grows', () => {
    const a = tensor([1, 2, 3], [3]);
    const view = a.data;
    tensor([4], [1]);
    expect(view.length).toBe(0);
    expect(a.toArray()).toEqual([1, 2, 3]);
  });

  for (const fx of fixtures) {
    it(fx.name, () => checkFixture(fx, TOL.js));
  }
});
