// The galaxy: every model as a WebGL point (regl-scatterplot draws millions), coloured by a
// categorical feature and sized by (log) downloads. Clicking a point opens its family.
import createScatterplot from 'regl-scatterplot';

const FIELDS = 5; // x, y, colour code, size in [0, 1], component (float32 each; see server._overview)
const SIZES = Array.from({ length: 64 }, (_, k) => 1.5 + (k / 63) * 10);

export class Overview {
  constructor(canvas, tooltip, onComponent) {
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.component = new Float32Array(0);
    const { width, height } = canvas.getBoundingClientRect();
    this.plot = createScatterplot({
      canvas, width, height, pointSize: SIZES, sizeBy: 'valueB', colorBy: 'valueA',
      opacity: 0.85, pointColorHover: '#000000', lassoOnLongPress: false,
      backgroundColor: '#ffffff', deselectOnDblClick: true,
    });
    this.plot.subscribe('select', ({ points }) => {
      if (points.length === 1) onComponent(this.component[points[0]]);
    });
    this.plot.subscribe('pointOver', (i) => {
      tooltip.hidden = false;
      tooltip.textContent = `family ${this.component[i]} — click to open`;
    });
    this.plot.subscribe('pointOut', () => { tooltip.hidden = true; });
    canvas.addEventListener('mousemove', (e) => {
      tooltip.style.left = `${e.offsetX + 12}px`;
      tooltip.style.top = `${e.offsetY + 12}px`;
    });
    new ResizeObserver(() => {
      const r = canvas.getBoundingClientRect();
      if (r.width && r.height) this.plot.set({ width: r.width, height: r.height });
    }).observe(canvas);
  }

  /** Draw the points in `buffer`; returns the number of points per colour code (for the legend). */
  async show(buffer, colors) {
    this.canvas.hidden = false;
    const data = new Float32Array(buffer);
    const n = data.length / FIELDS;
    const x = new Float32Array(n), y = new Float32Array(n), a = new Float32Array(n), b = new Float32Array(n);
    this.component = new Float32Array(n);
    let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
    for (let i = 0; i < n; i++) {
      const o = i * FIELDS;
      x[i] = data[o]; y[i] = data[o + 1];
      if (x[i] < minX) minX = x[i]; if (x[i] > maxX) maxX = x[i];
      if (y[i] < minY) minY = y[i]; if (y[i] > maxY) maxY = y[i];
    }
    // Normalised device coordinates, same scale on both axes.
    const half = Math.max(maxX - minX, maxY - minY, 1e-9) / 2 * 1.02;
    const cx = (minX + maxX) / 2, cy = (minY + maxY) / 2;
    const counts = new Array(colors.length).fill(0);
    for (let i = 0; i < n; i++) {
      const o = i * FIELDS;
      x[i] = (x[i] - cx) / half; y[i] = (y[i] - cy) / half;
      a[i] = data[o + 2]; b[i] = data[o + 3]; this.component[i] = data[o + 4];
      counts[a[i]] += 1;
    }
    this.plot.set({ pointColor: colors, pointColorActive: colors });
    await this.plot.draw({ x, y, valueA: a, valueB: b }, { zDataType: 'categorical', wDataType: 'continuous' });
    this.plot.zoomToOrigin?.();
    return counts;
  }

  hide() { this.canvas.hidden = true; this.tooltip.hidden = true; }
}
