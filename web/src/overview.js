// The galaxy: every model as a WebGL point (regl-scatterplot draws millions), coloured by a
// categorical feature and sized by (log) downloads. Clicking a point opens its family; zooming in
// reports the visible rectangle (layout coordinates) so the page can fetch the models inside it.
import createScatterplot from 'regl-scatterplot';
import { scaleLinear } from 'd3-scale';

const FIELDS = 5; // x, y, colour code, size in [0, 1], component (float32 each; see server._overview)
const SIZES = Array.from({ length: 64 }, (_, k) => 1.5 + (k / 63) * 10);
const VIEW_SETTLES_MS = 250; // report the view once panning and zooming pause this long

export class Overview {
  /** `bounds` = [x0, y0, x1, y1] of the whole atlas layout (from /api/meta). */
  constructor(canvas, tooltip, bounds, { onComponent, onView }) {
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.component = new Float32Array(0);
    // Layout coordinates map to GL [-1, 1] by the atlas bounds, the same scale on both axes, so
    // points fetched later for a zoomed view land where the first ones were. The d3 scales are
    // kept in step with the camera by regl-scatterplot: their domains are the visible rectangle.
    const [x0, y0, x1, y1] = bounds ?? [0, 0, 1, 1];
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
      if (points.length === 1) onComponent(this.component[points[0]]);
    });
    this.plot.subscribe('pointOver', (i) => {
      tooltip.hidden = false;
      tooltip.textContent = `family ${this.component[i]} — click to open`;
    });
    this.plot.subscribe('pointOut', () => { tooltip.hidden = true; });
    this.plot.subscribe('view', () => {
      clearTimeout(this.viewTimer);
      this.viewTimer = setTimeout(() => { if (!this.canvas.hidden) onView(this.visible()); }, VIEW_SETTLES_MS);
    });
    canvas.addEventListener('mousemove', (e) => {
      tooltip.style.left = `${e.offsetX + 12}px`;
      tooltip.style.top = `${e.offsetY + 12}px`;
    });
    new ResizeObserver(() => {
      const r = canvas.getBoundingClientRect();
      if (r.width && r.height) this.plot.set({ width: r.width, height: r.height });
    }).observe(canvas);
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
    const data = new Float32Array(buffer);
    const n = data.length / FIELDS;
    const x = new Float32Array(n), y = new Float32Array(n), a = new Float32Array(n), b = new Float32Array(n);
    this.component = new Float32Array(n);
    const counts = new Array(colors.length).fill(0);
    for (let i = 0; i < n; i++) {
      const o = i * FIELDS;
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
    return counts;
  }

  hide() { this.canvas.hidden = true; this.tooltip.hidden = true; }
}
