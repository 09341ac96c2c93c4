/**
 * vega-lite specs for experiment pages: lines over steps or layers, heatmaps, grouped bars. Each takes plain rows
 * (`{ x, y, series }` objects) and returns a spec the report renderer draws; a log scale drops rows whose value is not
 * positive and finite (a log axis cannot place them) and the caption should say so when it matters.
 */
import type { TopLevelSpec } from 'vega-lite';

export type Row = Record<string, string | number | boolean | null>;

const WIDTH = 520;
const HEIGHT = 260;

/** Rows whose `field` a log scale can show (finite and > 0). */
function loggable(rows: readonly Row[], field: string): Row[] {
  return rows.filter((r) => typeof r[field] === 'number' && Number.isFinite(r[field]) && (r[field] as number) > 0);
}

export interface LineOptions {
  title: string;
  x: string;
  y: string;
  /** The field that splits lines by colour. */
  color?: string;
  /** The field that splits lines by dash (a second grouping). */
  dash?: string;
  /** Small multiples: one panel per value of this field (columns). */
  facet?: string;
  xTitle?: string;
  yTitle?: string;
  logX?: boolean;
  logY?: boolean;
  /** Points on the lines (few x values, e.g. layers). */
  points?: boolean;
  /** A horizontal reference line at this y (a baseline loss), labelled. */
  rule?: { y: number; label: string };
  width?: number;
  height?: number;
  /** x as an ordinal axis (layer names) rather than quantitative. */
  ordinalX?: boolean;
  /** x takes whole numbers only (layer indexes): ticks at integers. */
  integerX?: boolean;
}

/** A line chart of `rows` (one line per `color` x `dash` group; panels per `facet`). */
export function lineChart(rows: readonly Row[], o: LineOptions): TopLevelSpec {
  const data = o.logY ? loggable(rows, o.y) : [...rows];
  const enc: Record<string, unknown> = {
    x: {
      field: o.x,
      type: o.ordinalX ? 'ordinal' : 'quantitative',
      title: o.xTitle ?? o.x,
      ...(o.logX ? { scale: { type: 'log' } } : {}),
      ...(o.ordinalX ? { sort: null } : {}),
      ...(o.integerX ? { axis: { tickMinStep: 1, format: 'd' } } : {}),
    },
    y: { field: o.y, type: 'quantitative', title: o.yTitle ?? o.y, scale: o.logY ? { type: 'log' } : { zero: false } },
  };
  if (o.color) enc.color = { field: o.color, type: 'nominal', title: o.color, sort: order(data, o.color) };
  if (o.dash) enc.strokeDash = { field: o.dash, type: 'nominal', title: o.dash, sort: order(data, o.dash) };
  const line = { mark: { type: 'line', point: Boolean(o.points), strokeWidth: 1.5 }, encoding: enc };
  const layers: unknown[] = [line];
  if (o.rule)
    layers.push(
      { mark: { type: 'rule', color: '#888', strokeDash: [4, 3] }, encoding: { y: { datum: o.rule.y } } },
      {
        mark: { type: 'text', align: 'left', dx: 4, dy: -6, color: '#666', fontSize: 10 },
        encoding: { y: { datum: o.rule.y }, x: { value: 0 }, text: { value: o.rule.label } },
      },
    );
  const inner = { width: o.width ?? WIDTH, height: o.height ?? HEIGHT, layer: layers };
  if (o.facet)
    return {
      title: o.title,
      data: { values: data },
      facet: { column: { field: o.facet, type: 'nominal', title: null, sort: order(data, o.facet) } },
      spec: inner,
      resolve: { scale: { y: 'shared' } },
    } as TopLevelSpec;
  return { title: o.title, data: { values: data }, ...inner } as TopLevelSpec;
}

export interface HeatmapOptions {
  title: string;
  x: string;
  y: string;
  value: string;
  xTitle?: string;
  yTitle?: string;
  valueTitle?: string;
  /** A diverging colour scheme centred on this value (e.g. 0 for log10 of a ratio); else a sequential one. */
  mid?: number;
  /** Reverse the sequential scheme (dark = small). */
  reverse?: boolean;
  /** Print each cell's value with this d3 format (`.2f`, `.1e`). */
  text?: string;
  /** The value's domain (clamped), [min, max]. */
  domain?: [number, number];
}

/** Cell labels in white on the dark end(s) of the colour scale, dark elsewhere (needs `domain` to know the ends). */
function textColor(o: HeatmapOptions): Record<string, unknown> {
  if (!o.domain) return { value: '#111' };
  const [lo, hi] = o.domain;
  const v = `datum['${o.value}']`;
  const dark =
    o.mid !== undefined
      ? `abs(${v} - ${o.mid}) > 0.6 * ${Math.max(hi - o.mid, o.mid - lo)}`
      : o.reverse
        ? `${v} > ${lo + 0.55 * (hi - lo)}`
        : `${v} < ${lo + 0.45 * (hi - lo)}`;
  return { condition: { test: `isFinite(${v}) && ${dark}`, value: 'white' }, value: '#111' };
}

/** The distinct values of `field` in the order they first appear (an explicit axis order for vega-lite). */
function order(rows: readonly Row[], field: string): (string | number | boolean | null)[] {
  return [...new Set(rows.map((r) => r[field] ?? null))];
}

/** A heatmap: `x` x `y` cells coloured by `value` (a cell with a null value is grey, labelled n/a), optionally labelled. */
export function heatmap(rows: readonly Row[], o: HeatmapOptions): TopLevelSpec {
  const xs = order(rows, o.x);
  const ys = order(rows, o.y);
  const scale: Record<string, unknown> =
    o.mid !== undefined
      ? { scheme: 'redblue', domainMid: o.mid, ...(o.domain ? { domain: o.domain, clamp: true } : {}) }
      : { scheme: 'viridis', reverse: Boolean(o.reverse), ...(o.domain ? { domain: o.domain, clamp: true } : {}) };
  const enc = {
    x: { field: o.x, type: 'nominal', title: o.xTitle ?? o.x, sort: xs },
    y: { field: o.y, type: 'nominal', title: o.yTitle ?? o.y, sort: ys },
  };
  const missing = `datum['${o.value}'] === null || !isFinite(datum['${o.value}'])`;
  const layers: unknown[] = [
    {
      mark: { type: 'rect', invalid: null },
      encoding: {
        ...enc,
        color: {
          condition: { test: missing, value: '#ccc' },
          field: o.value,
          type: 'quantitative',
          title: o.valueTitle ?? o.value,
          scale,
        },
      },
    },
  ];
  if (o.text)
    layers.push({
      transform: [{ calculate: `${missing} ? 'n/a' : format(datum['${o.value}'], '${o.text}')`, as: '_label' }],
      mark: { type: 'text', fontSize: 9 },
      encoding: { ...enc, text: { field: '_label', type: 'nominal' }, color: textColor(o) },
    });
  return {
    title: o.title,
    data: { values: [...rows] },
    width: Math.max(160, Math.min(900, xs.length * 56)),
    height: Math.max(80, Math.min(700, ys.length * 22)),
    layer: layers,
  } as TopLevelSpec;
}

export interface BarOptions {
  title: string;
  /** The category on the x axis. */
  x: string;
  y: string;
  /** Bars side by side within each x category by this field. */
  group?: string;
  xTitle?: string;
  yTitle?: string;
  logY?: boolean;
  rule?: { y: number; label: string };
}

/** Grouped bars: one bar per `x` (and per `group` within it). */
export function barChart(rows: readonly Row[], o: BarOptions): TopLevelSpec {
  const data = o.logY ? loggable(rows, o.y) : [...rows];
  const enc: Record<string, unknown> = {
    x: { field: o.x, type: 'nominal', title: o.xTitle ?? o.x, sort: null },
    y: { field: o.y, type: 'quantitative', title: o.yTitle ?? o.y, ...(o.logY ? { scale: { type: 'log' } } : {}) },
  };
  if (o.group) {
    enc.xOffset = { field: o.group, type: 'nominal', sort: null };
    enc.color = { field: o.group, type: 'nominal', title: o.group, sort: null };
  }
  const layers: unknown[] = [{ mark: 'bar', encoding: enc }];
  if (o.rule)
    layers.push({ mark: { type: 'rule', color: '#c00', strokeDash: [4, 3] }, encoding: { y: { datum: o.rule.y } } });
  return { title: o.title, data: { values: data }, width: WIDTH, height: HEIGHT, layer: layers } as TopLevelSpec;
}
