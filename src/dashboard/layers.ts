/** The per-layer statistics the API serves: the last step's, and matrices of fields over steps (JSON or f32). */
import type { RunStore } from '../track/store.js';
import type { LayerField, LayerMatrix } from '../track/types.js';
import type { JsonNumber, LastLayers, LayersResponse } from './api-types.js';
import { jsonNumber } from './data.js';
/** Every layer's statistics at the run's last step that has them. */
export function lastLayers(store: RunStore, id: string): LastLayers | null {
  const rows = store.getLayerStats(id, { last: true });
  if (rows.length === 0) return null;
  return { step: rows[0]!.step, layers: rows.map(({ step: _, ...rest }) => rest) as LastLayers['layers'] };
}

/**
 * Layer matrices for several fields, aligned to the layers and steps of the first (a writer may add a step between
 * two reads).
 */
export function layersPayload(
  store: RunStore,
  id: string,
  fields: readonly LayerField[],
  from: number,
  encoding: 'json' | 'f32',
): LayersResponse {
  let base: LayerMatrix | null = null;
  const out: LayersResponse['fields'] = {};
  for (const field of fields) {
    let m = store.getLayerMatrix(id, field, { fromStep: from });
    if (base === null) base = m;
    else m = align(m, base);
    out[field] = encoding === 'f32' ? f32Base64(m.values) : jsonValues(m.values);
  }
  return { layers: base?.layers ?? [], steps: base?.steps ?? [], encoding, fields: out };
}

export function align(m: LayerMatrix, base: LayerMatrix): LayerMatrix {
  const same =
    m.steps.length === base.steps.length &&
    m.layers.length === base.layers.length &&
    m.layers.every((l, i) => l === base.layers[i]);
  if (same) return m;
  const n = base.steps.length;
  const values = new Float64Array(base.layers.length * n).fill(Number.NaN);
  const stepIndex = new Map(m.steps.map((s, i) => [s, i]));
  const layerIndex = new Map(m.layers.map((l, i) => [l, i]));
  base.layers.forEach((layer, l) => {
    const ml = layerIndex.get(layer);
    if (ml === undefined) return;
    for (let s = 0; s < n; s++) {
      const ms = stepIndex.get(base.steps[s]!);
      if (ms !== undefined) values[l * n + s] = m.values[ml * m.steps.length + ms]!;
    }
  });
  return { field: m.field, layers: base.layers, steps: base.steps, values };
}

export function f32Base64(values: Float64Array): string {
  const f = new Float32Array(values);
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64');
}

export function jsonValues(values: Float64Array): (JsonNumber | null)[] {
  const out = new Array<JsonNumber | null>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    out[i] = Number.isNaN(v) ? null : jsonNumber(v);
  }
  return out;
}
