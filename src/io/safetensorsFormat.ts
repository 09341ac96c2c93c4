/**
 * The safetensors format on bytes, without file access (so it also runs in a browser).
 *
 * Layout: an 8-byte little-endian unsigned header length N, N bytes of JSON header, then the raw little-endian
 * tensor data. The header maps each tensor name to `{ dtype, shape, data_offsets: [begin, end] }` (offsets relative
 * to the start of the data) and may hold `__metadata__`, a string → string map. See
 * https://github.com/huggingface/safetensors.
 *
 * gradguard writes F32 only (its tensors are float32) and reads F32, F64, F16, BF16 and the integer and bool types,
 * converting values to float32 (integers beyond 2^24 lose precision).
 */

import { GradguardError } from '../base/errors.js';
import { empty, Tensor } from '../tensor/tensor.js';

/** A malformed safetensors file or an argument that cannot be saved. */
export class SafetensorsError extends GradguardError {
  static override readonly code = 'safetensors.invalid';
  override readonly name = 'SafetensorsError';
}

const SIZES: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
};

/** The header entry of one tensor. */
export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function checkName(name: string, where: string): void {
  if (name === '' || name === '__metadata__') {
    throw new SafetensorsError(`${where}: '${name}' cannot be a tensor name (empty, or the reserved __metadata__)`);
  }
}

/**
 * Serializes float32 tensors to safetensors bytes. Tensors are written in name order, the header is padded with
 * spaces to a multiple of 8 bytes (as the reference implementation), so equal inputs give equal bytes.
 *
 * @param tensors tensors by name (e.g. `model.stateDict()`)
 * @param metadata optional string → string map stored as `__metadata__`
 * @returns the file's bytes
 * @example const bytes = serializeSafetensors(model.stateDict(), { step: '100' });
 */
export function serializeSafetensors(tensors: Record<string, Tensor>, metadata?: Record<string, string>): Uint8Array {
  const fn = 'serializeSafetensors()';
  if (tensors === null || typeof tensors !== 'object') {
    throw new SafetensorsError(
      `${fn}: tensors must be an object of Tensors by name, got ${tensors === null ? 'null' : typeof tensors}`,
    );
  }
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== 'object')
      throw new SafetensorsError(`${fn}: metadata must be an object of strings`);
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') {
        throw new SafetensorsError(
          `${fn}: metadata values must be strings (safetensors stores a string → string map), got ${typeof v} for '${k}'; convert it with String() or JSON.stringify()`,
        );
      }
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const name of names) {
    checkName(name, fn);
    const t = tensors[name];
    if (!(t instanceof Tensor))
      throw new SafetensorsError(`${fn}: '${name}' must be a Tensor, got ${t === null ? 'null' : typeof t}`);
    const bytes = t.size * 4;
    header[name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const enc = new TextEncoder();
  let json = enc.encode(JSON.stringify(header));
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) {
    const padded = new Uint8Array(json.length + pad);
    padded.set(json);
    padded.fill(0x20, json.length);
    json = padded;
  }
  const out = new Uint8Array(8 + json.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const name of names) {
    const d = tensors[name]!.data;
    if (littleEndian) out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), pos);
    else for (let i = 0; i < d.length; i++) view.setFloat32(pos + 4 * i, d[i]!, true);
    pos += d.byteLength;
  }
  return out;
}

/**
 * Reads and validates the header of safetensors bytes.
 * @returns the tensor entries by name, the metadata, and where the data starts
 * @throws SafetensorsError for a bad header length, JSON, dtype, shape or offsets
 */
export function parseSafetensorsHeader(bytes: Uint8Array): {
  entries: Record<string, SafetensorsEntry>;
  metadata: Record<string, string>;
  dataStart: number;
} {
  const fn = 'parseSafetensors()';
  if (!(bytes instanceof Uint8Array))
    throw new SafetensorsError(`${fn}: expected a Uint8Array (or Buffer) of the file's bytes`);
  if (bytes.length < 8) {
    throw new SafetensorsError(
      `${fn}: the data is ${bytes.length} bytes; a safetensors file starts with an 8-byte header length`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8)) {
    throw new SafetensorsError(
      `${fn}: the header length ${n} is beyond the end of the data (${bytes.length} bytes): the file is truncated or not safetensors`,
    );
  }
  const hlen = Number(n);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + hlen)));
  } catch (e) {
    throw new SafetensorsError(
      `${fn}: the header is not valid UTF-8 JSON (${(e as Error).message}): the file is damaged or not safetensors`,
    );
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new SafetensorsError(`${fn}: the header must be a JSON object of tensor entries`);
  }
  const dataStart = 8 + hlen;
  const dataLen = bytes.length - dataStart;
  const entries: Record<string, SafetensorsEntry> = {};
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (
        raw === null ||
        typeof raw !== 'object' ||
        Array.isArray(raw) ||
        Object.values(raw).some((v) => typeof v !== 'string')
      ) {
        throw new SafetensorsError(`${fn}: __metadata__ must be an object of strings`);
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    const e = raw as Partial<SafetensorsEntry> | null;
    if (!e || typeof e !== 'object')
      throw new SafetensorsError(`${fn}: the entry of tensor '${name}' is not an object`);
    if (typeof e.dtype !== 'string' || !(e.dtype in SIZES)) {
      throw new SafetensorsError(
        `${fn}: tensor '${name}' has dtype ${JSON.stringify(e.dtype)}, which gradguard cannot read; supported: ${Object.keys(SIZES).join(', ')}`,
      );
    }
    if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      throw new SafetensorsError(
        `${fn}: tensor '${name}' has shape ${JSON.stringify(e.shape)}; expected an array of non-negative integers`,
      );
    }
    const off = e.data_offsets;
    if (
      !Array.isArray(off) ||
      off.length !== 2 ||
      !off.every((v) => Number.isSafeInteger(v) && v >= 0) ||
      off[0] > off[1]
    ) {
      throw new SafetensorsError(
        `${fn}: tensor '${name}' has data_offsets ${JSON.stringify(off)}; expected [begin, end] with 0 <= begin <= end`,
      );
    }
    if (off[1] > dataLen) {
      throw new SafetensorsError(
        `${fn}: tensor '${name}' has data_offsets [${off}] beyond the ${dataLen} bytes of data: the file is truncated or its header is wrong`,
      );
    }
    const need = e.shape.reduce((p, d) => p * d, 1) * SIZES[e.dtype]!;
    if (off[1] - off[0] !== need) {
      throw new SafetensorsError(
        `${fn}: tensor '${name}' spans ${off[1] - off[0]} bytes but shape [${e.shape}] of ${e.dtype} needs ${need}`,
      );
    }
    entries[name] = { dtype: e.dtype, shape: e.shape, data_offsets: [off[0], off[1]] };
  }
  // the data must be covered exactly, without holes or overlaps (as the reference implementation checks)
  let end = 0;
  for (const [name, e] of Object.entries(entries).sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0])) {
    if (e.data_offsets[0] !== end) {
      throw new SafetensorsError(
        `${fn}: tensor '${name}' starts at byte ${e.data_offsets[0]} of the data, expected ${end}: tensors overlap or leave a hole`,
      );
    }
    end = e.data_offsets[1];
  }
  if (end !== dataLen) {
    throw new SafetensorsError(
      `${fn}: the tensors cover ${end} of the ${dataLen} bytes of data: the header and the data disagree`,
    );
  }
  return { entries, metadata, dataStart };
}

function f16(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/**
 * Parses safetensors bytes into float32 tensors (other dtypes are converted).
 * @param bytes the file's bytes
 * @returns tensors by name
 * @throws SafetensorsError for malformed data (see `parseSafetensorsHeader`)
 * @example const dict = parseSafetensors(new Uint8Array(await (await fetch(url)).arrayBuffer()));
 */
export function parseSafetensors(bytes: Uint8Array): Record<string, Tensor> {
  const { entries, dataStart } = parseSafetensorsHeader(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Record<string, Tensor> = {};
  for (const [name, e] of Object.entries(entries)) {
    const t = empty(e.shape);
    const d = t.data;
    const base = dataStart + e.data_offsets[0];
    const n = t.size;
    switch (e.dtype) {
      case 'F32':
        if (littleEndian) new Uint8Array(d.buffer, d.byteOffset, n * 4).set(bytes.subarray(base, base + n * 4));
        else for (let i = 0; i < n; i++) d[i] = view.getFloat32(base + 4 * i, true);
        break;
      case 'F64':
        for (let i = 0; i < n; i++) d[i] = view.getFloat64(base + 8 * i, true);
        break;
      case 'F16':
        for (let i = 0; i < n; i++) d[i] = f16(view.getUint16(base + 2 * i, true));
        break;
      case 'BF16': {
        const scratch = new DataView(new ArrayBuffer(4));
        for (let i = 0; i < n; i++) {
          scratch.setUint32(0, view.getUint16(base + 2 * i, true) << 16);
          d[i] = scratch.getFloat32(0);
        }
        break;
      }
      case 'I64':
        for (let i = 0; i < n; i++) d[i] = Number(view.getBigInt64(base + 8 * i, true));
        break;
      case 'U64':
        for (let i = 0; i < n; i++) d[i] = Number(view.getBigUint64(base + 8 * i, true));
        break;
      case 'I32':
        for (let i = 0; i < n; i++) d[i] = view.getInt32(base + 4 * i, true);
        break;
      case 'U32':
        for (let i = 0; i < n; i++) d[i] = view.getUint32(base + 4 * i, true);
        break;
      case 'I16':
        for (let i = 0; i < n; i++) d[i] = view.getInt16(base + 2 * i, true);
        break;
      case 'U16':
        for (let i = 0; i < n; i++) d[i] = view.getUint16(base + 2 * i, true);
        break;
      case 'I8':
        for (let i = 0; i < n; i++) d[i] = view.getInt8(base + i);
        break;
      default: // U8, BOOL
        for (let i = 0; i < n; i++) d[i] = view.getUint8(base + i);
    }
    out[name] = t;
  }
  return out;
}
