/**
 * A layers x steps heatmap on a canvas, log colour scale (viridis): one row per layer in forward order, steps binned
 * to the canvas' pixels (the geometric mean of each bin). Grey: not logged or NaN; red: infinite; black: zero.
 */
import { fmtNum, h, tooltip, viridis } from './format.js';

export interface HeatmapSpec {
  title: string;
  /** `data-heatmap` attribute of the box. */
  key: string;
  /** A sentence under the title. */
  help?: string;
}

const MISSING: [number, number, number] = [225, 225, 225];
const INFINITE: [number, number, number] = [214, 39, 40];
const ZERO: [number, number, number] = [15, 15, 15];

export class Heatmap {
  readonly box: HTMLElement;
  readonly canvas: HTMLCanvasElement;
  private layers: string[] = [];
  private steps: number[] = [];
  private rows: Float32Array[] = [];
  /** Bin means (log10) per row and column of the last drawing, for the tooltip. */
  private binned: Float64Array = new Float64Array(0);
  private cols = 0;
  private geom = { x: 0, y: 0, w: 0, rowH: 0 };
  private readonly resize: ResizeObserver;
  private lastWidth = 0;

  constructor(parent: HTMLElement, spec: HeatmapSpec) {
    this.canvas = h('canvas', { class: 'heatmap-canvas', 'data-heatmap': spec.key });
    this.box = h(
      'section',
      { class: 'card heatmap' },
      h('h3', {}, spec.title),
      spec.help ? h('p', { class: 'muted small' }, spec.help) : null,
      this.canvas,
    );
    parent.append(this.box);
    this.canvas.addEventListener('mousemove', (e) => this.hover(e));
    this.canvas.addEventListener('mouseleave', () => tooltip(null));
    this.resize = new ResizeObserver(() => {
      if (this.box.clientWidth !== this.lastWidth) this.draw();
    });
    this.resize.observe(this.box);
  }

  /** `rows[l][s]`: the value of layer `l` at `steps[s]`. */
  setData(layers: readonly string[], steps: readonly number[], rows: readonly Float32Array[]): void {
    this.layers = [...layers];
    this.steps = [...steps];
    this.rows = [...rows];
    this.draw();
  }

  draw(): void {
    const L = this.layers.length;
    const n = this.steps.length;
    const c = this.canvas;
    const width = Math.max(300, this.box.clientWidth - 24);
    this.lastWidth = this.box.clientWidth;
    const rowH = L <= 8 ? 22 : L <= 24 ? 16 : Math.max(3, Math.floor(480 / L));
    const ctx0 = c.getContext('2d')!;
    ctx0.font = '11px system-ui, sans-serif';
    const labelW = Math.min(180, Math.ceil(Math.max(24, ...this.layers.map((l) => ctx0.measureText(l).width))) + 10);
    const barW = 92;
    const top = 6;
    const bottom = 28;
    const plotW = Math.max(50, width - labelW - barW);
    const height = top + Math.max(1, L) * rowH + bottom;
    const dpr = window.devicePixelRatio || 1;
    c.width = Math.round(width * dpr);
    c.height = Math.round(height * dpr);
    c.style.width = `${width}px`;
    c.style.height = `${height}px`;
    c.dataset.rows = String(L);
    c.dataset.steps = String(n);
    c.dataset.layers = this.layers.join(',');
    const ctx = c.getContext('2d')!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#333';
    this.geom = { x: labelW, y: top, w: plotW, rowH };
    if (L === 0 || n === 0) {
      ctx.fillStyle = '#888';
      ctx.fillText('no layer statistics logged yet', labelW, top + 14);
      c.dataset.drawn = '0';
      return;
    }

    // Bin the steps into at most one column per pixel; the colour is the mean of log10 over the bin.
    const cols = Math.min(n, Math.floor(plotW));
    this.cols = cols;
    const binned = new Float64Array(L * cols);
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let l = 0; l < L; l++) {
      const row = this.rows[l];
      for (let b = 0; b < cols; b++) {
        const s0 = Math.floor((b * n) / cols);
        const s1 = Math.max(s0 + 1, Math.floor(((b + 1) * n) / cols));
        let sum = 0;
        let count = 0;
        let inf = false;
        let zero = false;
        if (row) {
          for (let s = s0; s < s1; s++) {
            const v = Math.abs(row[s]!);
            if (v > 0 && v < Number.POSITIVE_INFINITY) {
              sum += Math.log10(v);
              count++;
            } else if (v === Number.POSITIVE_INFINITY) inf = true;
            else if (v === 0) zero = true;
          }
        }
        const m = inf
          ? Number.POSITIVE_INFINITY
          : count > 0
            ? sum / count
            : zero
              ? Number.NEGATIVE_INFINITY
              : Number.NaN;
        binned[l * cols + b] = m;
        if (Number.isFinite(m)) {
          if (m < lo) lo = m;
          if (m > hi) hi = m;
        }
      }
    }
    this.binned = binned;
    if (!(hi >= lo)) {
      lo = 0;
      hi = 1;
    } else if (hi - lo < 1e-6) {
      lo -= 0.5;
      hi += 0.5;
    }
    const img = new ImageData(cols, L);
    for (let i = 0; i < L * cols; i++) {
      const m = binned[i]!;
      const rgb = Number.isNaN(m)
        ? MISSING
        : m === Number.POSITIVE_INFINITY
          ? INFINITE
          : m === Number.NEGATIVE_INFINITY
            ? ZERO
            : viridis((m - lo) / (hi - lo));
      img.data[i * 4] = rgb[0];
      img.data[i * 4 + 1] = rgb[1];
      img.data[i * 4 + 2] = rgb[2];
      img.data[i * 4 + 3] = 255;
    }
    const off = document.createElement('canvas');
    off.width = cols;
    off.height = L;
    off.getContext('2d')!.putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, labelW, top, plotW, L * rowH);

    // Layer names, forward order from the top.
    ctx.fillStyle = '#333';
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    const every = Math.ceil(11 / rowH);
    for (let l = 0; l < L; l += every) ctx.fillText(this.layers[l]!, labelW - 6, top + (l + 0.5) * rowH);

    // Step axis: five ticks.
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const yAxis = top + L * rowH;
    ctx.strokeStyle = '#999';
    ctx.beginPath();
    const ticks = Math.min(5, n);
    for (let k = 0; k < ticks; k++) {
      const i = ticks === 1 ? 0 : Math.round((k * (n - 1)) / (ticks - 1));
      const x = labelW + ((i + 0.5) / n) * plotW;
      ctx.moveTo(x, yAxis);
      ctx.lineTo(x, yAxis + 4);
      ctx.fillText(String(this.steps[i]), Math.min(Math.max(x, labelW + 12), labelW + plotW - 12), yAxis + 6);
    }
    ctx.stroke();
    ctx.fillText('step', labelW + plotW / 2, yAxis + 16);

    // Colour bar with powers of ten.
    const bx = labelW + plotW + 12;
    const bh = Math.max(40, L * rowH);
    for (let y = 0; y < bh; y++) {
      const [r, g, b] = viridis(1 - y / (bh - 1));
      ctx.fillStyle = `rgb(${r | 0},${g | 0},${b | 0})`;
      ctx.fillRect(bx, top + y, 12, 1);
    }
    ctx.fillStyle = '#333';
    ctx.textAlign = 'left';
    ctx.textBaseline = 'middle';
    ctx.fillText(fmtNum(10 ** hi), bx + 16, top + 5);
    ctx.fillText(fmtNum(10 ** lo), bx + 16, top + bh - 5);
    c.dataset.drawn = '1';
    c.dataset.range = `${lo},${hi}`;
  }

  private hover(e: MouseEvent): void {
    const { x, y, w, rowH } = this.geom;
    const r = this.canvas.getBoundingClientRect();
    const px = e.clientX - r.left - x;
    const py = e.clientY - r.top - y;
    const L = this.layers.length;
    const n = this.steps.length;
    if (px < 0 || px >= w || py < 0 || py >= L * rowH || this.cols === 0) {
      tooltip(null);
      return;
    }
    const l = Math.floor(py / rowH);
    const b = Math.min(this.cols - 1, Math.floor((px / w) * this.cols));
    const s0 = Math.floor((b * n) / this.cols);
    const s1 = Math.max(s0 + 1, Math.floor(((b + 1) * n) / this.cols));
    const stepText = s1 - s0 === 1 ? `step ${this.steps[s0]}` : `steps ${this.steps[s0]}–${this.steps[s1 - 1]}`;
    const value = s1 - s0 === 1 ? (this.rows[l]?.[s0] ?? Number.NaN) : 10 ** this.binned[l * this.cols + b]!;
    const what = s1 - s0 === 1 ? '' : 'geometric mean ';
    tooltip(`${this.layers[l]} · ${stepText} · ${what}${fmtNum(value)}`, e.clientX, e.clientY);
  }

  destroy(): void {
    this.resize.disconnect();
  }
}
