/** Talking to the dashboard's server, and the data a run page keeps (merged as live steps arrive). */
import { type MetricName, metricKey } from '../../track/metrics.js';
import type { JsonNumber, LayersResponse, MetricsResponse } from '../api-types.js';

/** An error the API answered with (its message is for the user). */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  const res = await fetch(url, signal ? { signal } : {});
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiFailure(res.status, `the server answered ${res.status} without JSON`);
  }
  if (!res.ok) {
    const message = (body as { error?: { message?: string } }).error?.message ?? `HTTP ${res.status}`;
    throw new ApiFailure(res.status, message);
  }
  return body as T;
}

/** A number from the API: 'NaN' / 'Infinity' strings become numbers, null stays null. */
export function num(v: JsonNumber | null | undefined): number | null {
  if (v === null || v === undefined) return null;
  return typeof v === 'number' ? v : Number(v);
}

/** The values of a base64 float32 matrix. */
export function decodeF32(b64: string): Float32Array {
  // Chromium 140+ and Firefox 133+ decode base64 natively.
  const U8 = Uint8Array as unknown as { fromBase64?: (s: string) => Uint8Array };
  if (U8.fromBase64) {
    const u8 = U8.fromBase64(b64);
    return new Float32Array(u8.buffer, u8.byteOffset, u8.byteLength >> 2);
  }
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer, 0, bytes.length >> 2);
}

/** First index whose value is >= x in a sorted array. */
function lowerBound(xs: readonly number[], x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A run's metrics by column, merged by step: a batch that starts at step `from` replaces everything from there. */
export class MetricStore {
  steps: number[] = [];
  readonly cols = new Map<string, (number | null)[]>();
  version = 0;

  merge(m: MetricsResponse, from = m.steps[0] ?? 0): void {
    const cut = lowerBound(this.steps, from);
    this.steps.length = cut;
    for (const col of this.cols.values()) col.length = cut;
    for (const s of m.steps) this.steps.push(s);
    for (const key of m.keys) {
      let col = this.cols.get(key);
      if (col === undefined) {
        col = new Array<number | null>(cut).fill(null);
        this.cols.set(key, col);
      }
      for (const v of m.series[key]!) col.push(num(v));
    }
    for (const col of this.cols.values()) while (col.length < this.steps.length) col.push(null);
    this.version++;
  }

  col(key: string): (number | null)[] | undefined {
    return this.cols.get(key);
  }

  /** The column of a quantity of the shared list (track/metrics.ts), under the first of its keys the run logged. */
  metric(name: MetricName): (number | null)[] | undefined {
    const k = metricKey(name, (key) => this.cols.has(key));
    return k === undefined ? undefined : this.cols.get(k);
  }

  /** The last non-null value of a column. */
  last(key: string): number | null {
    const col = this.cols.get(key);
    if (!col) return null;
    for (let i = col.length - 1; i >= 0; i--) if (col[i] !== null) return col[i]!;
    return null;
  }
}

/** One growable row per layer, per field. */
export class LayerStore {
  layers: string[] = [];
  steps: number[] = [];
  /** field → one row per layer; rows[l][s] for s < steps.length. */
  readonly fields = new Map<string, Float32Array[]>();
  private capacity = 0;
  version = 0;

  merge(res: LayersResponse, from = res.steps[0] ?? 0): void {
    const sameLayers = res.layers.length === this.layers.length && res.layers.every((l, i) => l === this.layers[i]);
    if (!sameLayers && res.layers.length > 0) {
      // A new layer set (first batch, or the model changed): start over with what the batch holds.
      this.layers = [...res.layers];
      this.steps = [];
      this.fields.clear();
      this.capacity = 0;
    }
    if (res.layers.length === 0) return;
    const cut = lowerBound(this.steps, from);
    const n = res.steps.length;
    const total = cut + n;
    if (total > this.capacity) this.grow(Math.max(total, this.capacity * 2, 256));
    this.steps.length = cut;
    for (const s of res.steps) this.steps.push(s);
    for (const [field, data] of Object.entries(res.fields)) {
      const values = typeof data === 'string' ? decodeF32(data) : Float32Array.from(data, (v) => num(v) ?? Number.NaN);
      let rows = this.fields.get(field);
      if (rows === undefined) {
        rows = this.layers.map(() => new Float32Array(this.capacity).fill(Number.NaN));
        this.fields.set(field, rows);
      }
      for (let l = 0; l < this.layers.length; l++) rows[l]!.set(values.subarray(l * n, (l + 1) * n), cut);
    }
    this.version++;
  }

  private grow(capacity: number): void {
    for (const [field, rows] of this.fields) {
      this.fields.set(
        field,
        rows.map((r) => {
          const next = new Float32Array(capacity).fill(Number.NaN);
          next.set(r.subarray(0, Math.min(r.length, this.steps.length)));
          return next;
        }),
      );
    }
    this.capacity = capacity;
  }

  /** The rows of a field, trimmed to the steps held. */
  rows(field: string): Float32Array[] | undefined {
    return this.fields.get(field)?.map((r) => r.subarray(0, this.steps.length));
  }
}
