/**
 * The API's request checking and error replies: run ids and query parameters are checked before any lookup, and
 * anything thrown becomes one JSON line `{"error": {"code", "message"}}` with its HTTP status.
 */
import type { Context } from 'hono';
import { GradguardError } from '../base/errors.js';
import { stringifyJson } from '../base/json.js';
import { isValidRunId } from '../track/ids.js';
import { type LayerField, RUN_STATUSES, type RunStatus, TrackError } from '../track/types.js';
import { DASHBOARD_LAYER_FIELDS } from './data.js';
/** An error the API reports as it is (status, code, message). */
export class ApiError extends GradguardError {
  constructor(
    readonly status: 400 | 403 | 404 | 405 | 409 | 500 | 503,
    code: string,
    message: string,
  ) {
    super(message, { code, user: status < 500 });
  }
}

export const TRACK_STATUS: Record<string, ApiError['status']> = {
  UNKNOWN_RUN: 404,
  NO_STORE: 404,
  AMBIGUOUS_RUN: 409,
  BAD_ARGUMENT: 400,
  BAD_STORE: 500,
  STORE_TOO_NEW: 500,
  CLOSED: 503,
  STORE_UNAVAILABLE: 503,
};

/** Turns anything thrown into an API error; unexpected errors say only "internal error". */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof TrackError) return new ApiError(TRACK_STATUS[e.code] ?? 500, e.code, e.message);
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.startsWith('SQLITE_BUSY')) {
    return new ApiError(503, 'BUSY', 'the run store is busy; try again');
  }
  return new ApiError(500, 'INTERNAL', 'internal error');
}

export function json(c: Context, body: unknown): Response {
  return c.body(stringifyJson(body), 200, { 'Content-Type': 'application/json; charset=utf-8' });
}

export function checkId(id: string): string {
  if (!isValidRunId(id)) {
    throw new ApiError(400, 'BAD_ID', 'malformed run id: ids are letters, digits, dots, dashes and underscores');
  }
  return id;
}

export function runId(c: Context): string {
  return checkId(c.req.param('id') ?? '');
}

export function parseIntParam(text: string | undefined, name: string, min: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,15}$/.test(text) || Number(text) < min) {
    throw new ApiError(400, 'BAD_PARAM', `${name} must be a whole number >= ${min}`);
  }
  return Number(text);
}

export function parseList(text: string | undefined, name: string, max: number): string[] | undefined {
  if (text === undefined) return undefined;
  const list = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (list.length > max) throw new ApiError(400, 'BAD_PARAM', `${name}: at most ${max} values`);
  if (list.some((s) => s.length > 128)) throw new ApiError(400, 'BAD_PARAM', `${name}: a value is too long`);
  return list;
}

export function parseStatuses(text: string | undefined): RunStatus[] | undefined {
  const list = parseList(text, 'status', RUN_STATUSES.length);
  if (list === undefined) return undefined;
  for (const s of list) {
    if (!RUN_STATUSES.includes(s as RunStatus)) {
      throw new ApiError(400, 'BAD_PARAM', `status must be among ${RUN_STATUSES.join(', ')}`);
    }
  }
  return list as RunStatus[];
}

export function parseFields(text: string | undefined): LayerField[] {
  const list = parseList(text, 'fields', DASHBOARD_LAYER_FIELDS.length);
  if (list === undefined) return [...DASHBOARD_LAYER_FIELDS];
  for (const f of list) {
    if (!DASHBOARD_LAYER_FIELDS.includes(f as LayerField)) {
      throw new ApiError(400, 'BAD_PARAM', `fields must be among ${DASHBOARD_LAYER_FIELDS.join(', ')}`);
    }
  }
  return list as LayerField[];
}

/** The host name of a Host header, lower case, without the port. */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.indexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}
