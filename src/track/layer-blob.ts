/** The layer_stats blob: a step's layer statistics, per layer the LAYER_FIELDS as little-endian float64. */
import { LAYER_FIELDS, type LayerStat } from './types.js';

/** Bytes per layer in a layer_stats row: the nine LAYER_FIELDS as float64. */
export const LAYER_RECORD_BYTES = LAYER_FIELDS.length * 8;

/** A step's layer statistics as one blob: per layer, the LAYER_FIELDS as little-endian float64. */
export function encodeLayers(layers: readonly LayerStat[]): Buffer {
  const buf = Buffer.allocUnsafe(layers.length * LAYER_RECORD_BYTES);
  for (let i = 0, o = 0; i < layers.length; i++, o += LAYER_RECORD_BYTES) {
    const l = layers[i]!;
    buf.writeDoubleLE(l.gradNorm, o);
    buf.writeDoubleLE(l.gradMaxAbs, o + 8);
    buf.writeDoubleLE(l.weightNorm, o + 16);
    buf.writeDoubleLE(l.updateRatio, o + 24);
    buf.writeDoubleLE(l.actMean, o + 32);
    buf.writeDoubleLE(l.actStd, o + 40);
    buf.writeDoubleLE(l.deadFrac ?? Number.NaN, o + 48);
    buf.writeDoubleLE(l.satFrac ?? Number.NaN, o + 56);
    buf.writeDoubleLE(l.nonFinite, o + 64);
  }
  return buf;
}
