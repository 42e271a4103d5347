// The galaxy: every model as a WebGL point (regl-scatterplot draws millions), coloured by a
// categorical feature and sized by (log) downloads. Families are labelled by their root's name,
// single models by their task's disc; hovering names the model under the pointer and its family,
// clicking opens that model; with at most 20,000 models in view, their edges are drawn on a 2-D
// canvas over the points. Zooming reports the visible rectangle (layout coordinates) so the page can
// fetch the models inside it.
import createScatterplot from 'regl-scatterplot';
import { scaleLinear } from 'd3-scale';
import { api, apiBytes } from './api.js';
import { PREDICTED, RELATION_COLORS, UNKNOWN } from './palette.js';

const FIELDS = 5; // x, y, colour code, size in [0, 1], component (float32 each; see server._overview)
const EDGE_FIELDS = 6; // x0, y0, x1, y1, relation code, predicted (see galaxy.Galaxy.edges)
const SIZES = Array.from({ length: 64 }, (_, k) => 1.5 + (k / 63) * 10);
const VIEW_SETTLES_MS = 250; // report the view once panning and zooming pause this long
const HOVER_MS = 60; // ask the server who is under the pointer once it rests this long
// Edges are drawn once the view holds at most this many drawn models (zoomed in, or a small
// atlas), at most MAX_EDGES of them (those into the heaviest sub-trees).
const EDGES_UP_TO = 20000;
const MAX_EDGES = 20000;
const LABEL_MIN_PX = 28; // a family is labelled once its drawing is this wide on screen (the largest always)
const ALWAYS_LABELLED = 8;

const short = (id) => id.slice(id.indexOf('/') + 1);

export class Overview {
  /** `bounds` = [x0, y0, x1, y1] of the whole atlas layout (from /api/meta). */
  constructor(canvas, tooltip, bounds, { onModel, onView, relationLabels, onError }) {
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.onModel = onModel;
    this.onError = onError;
    this.relationColors = relationLabels.map((r) => RELATION_COLORS[r] || UNKNOWN);
    this.bounds = bounds ?? [0, 0, 1, 1];
    this.component = new Float32Array(0);
    this.lx = new Float32Array(0); this.ly = new Float32Array(0);
    this.labels = null;
    this.edges = null;
    this.labelBox = document.getElementById('galaxy-labels');
    this.edgeCanvas = document.getElementById('galaxy-edges');
    // Layout coordinates map to GL [-1, 1] by the atlas bounds, the same scale on both axes, so
    // points fetched later for a zoomed view land where the first ones were. The d3 scales are
    // kept in step with the camera by regl-scatterplot: their domains are the visible rectangle.
    const [x0, y0, x1, y1] = this.bounds;
    this.half = (Math.max(x1 - x0, y1 - y0, 1e-9) / 2) * 1.02;
    this.cx = (x0 + x1) / 2;
    this.cy = (y0 + y1) / 2;
    this.xScale = scaleLinear().domain([this.cx - this.half, this.cx + this.half]);
    this.yScale = scaleLinear().domain([this.cy - this.half, this.cy + this.half]);
    const { width, height } = canvas.getBoundingClientRect();
    this.plot = createScatterplot({
      canvas, width, height, pointSize: SIZES, sizeBy: 'valueB', colorBy: 'valueA',
      opacity: 0.85, pointColorHover: '#000000', lassoOnLongPress: false,
      backgroundColor: '#ffffff', deselectOnDblClick: true, xScale: this.xScale, yScale: this.yScale,
    });
    this.plot.subscribe('select', ({ points }) => {
      if (points.length === 1) this.open(points[0]);
    });
    this.plot.subscribe('pointOver', (i) => this.hover(i));
    this.plot.subscribe('pointOut', () => { clearTimeout(this.hoverTimer); this.hovered = -1; tooltip.hidden = true; });
    this.plot.subscribe('view', () => {
      this.placeOverlays();
      clearTimeout(this.viewTimer);
      this.viewTimer = setTimeout(() => {
        if (this.canvas.hidden) return;
        const rect = this.visible();
        onView(rect);
        this.updateEdges(rect).catch((err) => this.onError(err));
      }, VIEW_SETTLES_MS);
    });
    canvas.addEventListener('mousemove', (e) => {
      tooltip.style.left = `${e.offsetX + 12}px`;
      tooltip.style.top = `${e.offsetY + 12}px`;
    });
    new ResizeObserver(() => {
      const r = canvas.getBoundingClientRect();
      if (r.width && r.height) {
        this.plot.set({ width: r.width, height: r.height });
        this.edgeCanvas.width = r.width * devicePixelRatio;
        this.edgeCanvas.height = r.height * devicePixelRatio;
        this.placeOverlays();
      }
    }).observe(canvas);
  }

  /** The model under point `i` (the server's nearest model to its layout position). */
  async who(i) {
    const q = new URLSearchParams({ x: this.lx[i], y: this.ly[i], radius: this.half * 1e-4 });
    return (await api('/api/at?' + q)).model;
  }

  hover(i) {
    this.hovered = i;
    clearTimeout(this.hoverTimer);
    this.hoverTimer = setTimeout(async () => {
      try {
        const m = await this.who(i);
        if (this.hovered !== i || !m) return;
        this.tooltip.hidden = false;
        this.tooltip.textContent = `${m.id} · ${m.downloads.toLocaleString()} downloads · ${m.descendants.toLocaleString()} descendants — `
          + `family ${m.family.name} (${m.family.size.toLocaleString()} models) — click to open`;
      } catch { /* the tooltip is a nicety; clicks report errors */ }
    }, HOVER_MS);
  }

  async open(i) {
    try {
      const m = await this.who(i);
      if (m) this.onModel(m.id, m.family.component);
    } catch (err) {
      this.onError(err);
    }
  }

  /** The visible rectangle [x0, y0, x1, y1] in layout coordinates. */
  visible() {
    const [a, b] = this.xScale.domain();
    const [c, d] = this.yScale.domain();
    return [Math.min(a, b), Math.min(c, d), Math.max(a, b), Math.max(c, d)];
  }

  /** Draw the points in `buffer`; when `reset`, move the camera to `view` ([x0, y0, x1, y1] in
   * layout coordinates) or to the whole atlas. Returns the number of points per colour code. */
  async show(buffer, colors, reset, view) {
    this.canvas.hidden = false;
    this.labelBox.hidden = false;
    this.edgeCanvas.hidden = false;
    const data = new Float32Array(buffer);
    const n = data.length / FIELDS;
    const x = new Float32Array(n), y = new Float32Array(n), a = new Float32Array(n), b = new Float32Array(n);
    this.component = new Float32Array(n);
    this.lx = new Float32Array(n); this.ly = new Float32Array(n);
    const counts = new Array(colors.length).fill(0);
    for (let i = 0; i < n; i++) {
      const o = i * FIELDS;
      this.lx[i] = data[o]; this.ly[i] = data[o + 1];
      x[i] = (data[o] - this.cx) / this.half; y[i] = (data[o + 1] - this.cy) / this.half;
      a[i] = data[o + 2]; b[i] = data[o + 3]; this.component[i] = data[o + 4];
      counts[a[i]] += 1;
    }
    this.plot.set({ pointColor: colors, pointColorActive: colors });
    await this.plot.draw({ x, y, valueA: a, valueB: b }, { zDataType: 'categorical', wDataType: 'continuous' });
    if (reset && view) {
      const [x0, y0, x1, y1] = view.map((v, k) => (v - (k % 2 ? this.cy : this.cx)) / this.half);
      await this.plot.zoomToArea({ x: x0, y: y0, width: x1 - x0, height: y1 - y0 });
    } else if (reset) {
      this.plot.zoomToOrigin();
    }
    this.placeOverlays();
    this.updateEdges(this.visible()).catch((err) => this.onError(err));
    return counts;
  }

  /** Labels: the largest families by their root's name, each task's disc of single models. */
  setLabels(labels, minFamily) {
    this.labels = labels;
    this.minFamily = minFamily;
    this.labelBox.replaceChildren();
    const make = (text, title, cls) => {
      const el = document.createElement('div');
      el.className = `glabel ${cls}`;
      el.textContent = text;
      el.title = title;
      this.labelBox.append(el);
      return el;
    };
    this.familyLabels = labels.families.map((f) => {
      // The two heaviest roots by name (a family joined by merges has several), then a count.
      const named = f.roots.slice(0, 2).map(short).join(' · ') || f.name;
      const more = f.root_count > 2 ? ` +${(f.root_count - 2).toLocaleString()} roots` : '';
      const el = make(`${named}${more} · ${f.size.toLocaleString()}`, f.roots.join(', '), 'family');
      el.dataset.component = f.component;
      return { el, f };
    });
    this.singleLabels = labels.singles.map((g) => ({
      el: make(`${g.task} · ${g.count.toLocaleString()} single models`, `single models whose task is ${g.task}`, 'singles'), f: g,
    }));
    this.placeOverlays();
  }

  /** Move labels and edges to the camera; labels that would overlap a larger one are hidden. */
  placeOverlays() {
    if (!this.labels || this.canvas.hidden) return;
    const taken = [];
    const free = (r) => !taken.some((t) => r.x0 < t.x1 && t.x0 < r.x1 && r.y0 < t.y1 && t.y0 < r.y1);
    const { width, height } = this.canvas.getBoundingClientRect();
    const px = Math.abs(this.xScale(1) - this.xScale(0));
    const place = (items, minSize, centred) => items.forEach(({ el, f }, k) => {
      const sx = this.xScale(f.x), sy = this.yScale(f.y);
      const big = 2 * f.radius * px;
      const wide = el.offsetWidth || 8 * el.textContent.length;
      const r = { x0: sx - wide / 2, x1: sx + wide / 2, y0: sy - (centred ? 8 : 18), y1: sy + (centred ? 8 : 0) };
      const show = (k < ALWAYS_LABELLED || big >= LABEL_MIN_PX) && (f.size ?? Infinity) >= minSize
        && sx > -wide && sx < width + wide && sy > -20 && sy < height + 20 && free(r);
      el.hidden = !show;
      if (show) {
        taken.push(r);
        el.style.transform = `translate(${Math.round(r.x0)}px, ${Math.round(r.y0)}px)`;
      }
    });
    place(this.familyLabels, this.minFamily || 1, false);
    if ((this.minFamily || 1) <= 1) place(this.singleLabels, 1, true);
    else this.singleLabels.forEach(({ el }) => { el.hidden = true; });
    this.drawEdges();
  }

  /** Few enough models in view: fetch the edges into them (else drop the edges). */
  async updateEdges(rect) {
    const [x0, y0, x1, y1] = rect;
    let inView = 0;
    for (let i = 0; i < this.lx.length && inView <= EDGES_UP_TO; i++) {
      if (this.lx[i] >= x0 && this.lx[i] <= x1 && this.ly[i] >= y0 && this.ly[i] <= y1) inView += 1;
    }
    if (inView > EDGES_UP_TO || inView === 0) { this.edgeSeq = (this.edgeSeq || 0) + 1; this.edges = null; this.drawEdges(); return; }
    const mine = (this.edgeSeq = (this.edgeSeq || 0) + 1);
    const { buffer } = await apiBytes(`/api/edges?bbox=${rect.join(',')}&max_edges=${MAX_EDGES}`);
    if (mine !== this.edgeSeq) return;
    this.edges = new Float32Array(buffer);
    this.drawEdges();
  }

  drawEdges() {
    const ctx = this.edgeCanvas.getContext('2d');
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.edgeCanvas.width, this.edgeCanvas.height);
    window.__atlas.galaxyEdges = this.edges ? this.edges.length / EDGE_FIELDS : 0;
    if (!this.edges || this.canvas.hidden) return;
    ctx.scale(devicePixelRatio, devicePixelRatio);
    ctx.globalAlpha = 0.55;
    const e = this.edges;
    for (let k = 0; k < e.length; k += EDGE_FIELDS) {
      ctx.strokeStyle = e[k + 5] ? PREDICTED : this.relationColors[e[k + 4]];
      ctx.lineWidth = e[k + 5] ? 1.5 : 0.8;
      ctx.beginPath();
      ctx.moveTo(this.xScale(e[k]), this.yScale(e[k + 1]));
      ctx.lineTo(this.xScale(e[k + 2]), this.yScale(e[k + 3]));
      ctx.stroke();
    }
  }

  /** Screen position (CSS pixels of the canvas) of layout point (x, y), for tests. */
  screenOf(x, y) { return { x: this.xScale(x), y: this.yScale(y) }; }

  hide() {
    this.canvas.hidden = true;
    this.tooltip.hidden = true;
    this.labelBox.hidden = true;
    this.edgeCanvas.hidden = true;
  }
}
