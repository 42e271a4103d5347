// One family in detail: sigma.js + graphology on the server's cached tree layout (no layout runs
// in the browser). Filters, the time slider and colouring are node/edge reducers, so changing
// them never rebuilds the graph.
import Graph from 'graphology';
import Sigma from 'sigma';
import { NodePointProgram } from 'sigma/rendering';
import { PREDICTED, RELATION_COLORS, UNKNOWN } from './palette.js';

// Above LARGE models: GL points and no labels (sigma's shaded discs and label placement cost per
// node on every frame, most of a first frame with software WebGL). Above SKELETON_FROM: only
// the skeleton's edges in the first frame.
const LARGE = 3000;
const SKELETON_FROM = 20000;
const CAMERA_SETTLES_MS = 250; // report the camera once panning and zooming pause this long
const CORNERS = ['bounds-min', 'bounds-max'];
const SKELETON = 5000;
const REPLAY_MS = 4800; // ▶ lasts this long whatever the frame rate: slow frames skip steps
const REPLAY_STEPS = 60;
const UNDATED = '#d0d0d0'; // models without a creation date, once a time or date cut is set

export class ComponentView {
  constructor(container, tooltip, { onModel, onTime, onCamera }) {
    this.container = container;
    this.tooltip = tooltip;
    this.onModel = onModel;
    this.onCamera = onCamera;
    this.onTime = onTime;
    this.data = null;
    this.selected = null;
    this.renderer = null;
    this.timer = null;
    this.slider = document.getElementById('time');
    this.slider.addEventListener('input', () => this.setTime(this.sliderTime()));
    document.getElementById('play').addEventListener('click', () => this.play());
  }

  /** Build the graph of `data` (see family.js) and draw it once, already styled with `style` at
   * `time`, seen through `camera` ({x, y, ratio} of sigma's camera; null: the whole family). */
  load(data, style, time, camera, model = null) {
    this.container.hidden = false;
    this.data = data;
    this.selected = null;
    const n = data.nodes.id.length;
    const large = n > LARGE;
    const graph = new Graph({ type: 'directed', multi: false, allowSelfLoops: false });
    // Node keys are row numbers, not model ids: sigma keeps per-node caches in plain objects,
    // and integer keys are array elements there, not hashed property names. Large families carry
    // no labels (sigma would place each on its label grid); the hovered model is named by the
    // tooltip and the selected one gets its label in nodeStyle.
    const { id, x, y } = data.nodes;
    for (let i = 0; i < n; i++) graph.addNode(i, large ? { x: x[i], y: y[i] } : { x: x[i], y: y[i], label: id[i] });
    // Two hidden nodes at the corners of the whole family's layout pin sigma's normalisation to
    // it, so a camera means the same place whichever level-of-detail answer is drawn.
    const [x0, y0, x1, y1] = data.bounds;
    graph.addNode(CORNERS[0], { x: x0, y: y0, hidden: true });
    graph.addNode(CORNERS[1], { x: x1, y: y1, hidden: true });
    const e = data.edges;
    // Per edge, from its dictionary codes: whether it was predicted, and its relation's colour.
    const predictedCode = e.provenanceLabels.map((p) => p.startsWith('predicted:'));
    this.predicted = Uint8Array.from(e.provenance, (code) => predictedCode[code]);
    this.relationColor = e.relationLabels.map((r) => RELATION_COLORS[r] || UNKNOWN);
    // Above LARGE models only the skeleton's edges are in the first frame: the SKELETON edges into
    // the largest sub-trees (edges are most of graphology's and sigma's work; a leaf already sits
    // next to its parent in the radial layout). The selected model gets all its edges; predicted
    // edges are always drawn.
    let cut = 0;
    const skeleton = n > SKELETON_FROM;
    if (skeleton) {
      const weights = Float64Array.from(e.target, (t) => data.nodes.descendants[t]).sort().reverse();
      cut = Math.max(1, weights[Math.min(SKELETON, weights.length) - 1]);
    }
    for (let k = 0; k < e.source.length; k++) {
      if (!skeleton || data.nodes.descendants[e.target[k]] >= cut || this.predicted[k]) this.addEdge(graph, k);
    }
    this.skeletonOnly = skeleton;
    this.graph = graph;
    // A model chosen already (a shared URL) is selected in the first frame, not by a second one.
    if (model) this.select(model);
    window.__atlas.marks.built = performance.now();
    this.tmin = Infinity; this.tmax = -Infinity;
    for (const t of data.nodes.created_at) {
      if (t < this.tmin) this.tmin = t; // NaN (unknown) compares false
      if (t > this.tmax) this.tmax = t;
    }
    if (this.tmin === Infinity) { this.tmin = 0; this.tmax = 0; }
    this.renderer?.kill();
    this.renderer = null;
    this.computeStyle(style, time);
    // Reducers are given at construction so the first frame is already styled (one pass).
    // Large families: square GL points instead of shaded discs, and labels only on hover/selection
    // (both cost per node on every frame; with software WebGL that is most of the first frame).
    this.renderer = new Sigma(graph, this.container, {
      hideEdgesOnMove: large, hideLabelsOnMove: large, labelRenderedSizeThreshold: large ? 1e9 : 9,
      defaultNodeType: large ? 'point' : 'circle', nodeProgramClasses: { point: NodePointProgram },
      defaultEdgeType: 'line', renderEdgeLabels: false, minCameraRatio: 0.005, maxCameraRatio: 20,
      allowInvalidContainer: true, // a view switched away while this family was loading
      nodeReducer: (node, attrs) => this.nodeStyle(node, attrs),
      edgeReducer: (edge, attrs) => this.edgeStyle(edge, attrs),
    });
    if (camera) this.renderer.getCamera().setState(camera);
    let settle = null;
    this.renderer.getCamera().on('updated', (c) => {
      clearTimeout(settle);
      settle = setTimeout(() => this.onCamera({ x: c.x, y: c.y, ratio: c.ratio }), CAMERA_SETTLES_MS);
    });
    this.renderer.on('clickNode', ({ node }) => this.onModel(data.nodes.id[node]));
    this.renderer.on('enterNode', ({ node }) => {
      this.tooltip.hidden = false;
      this.tooltip.textContent = data.nodes.id[node];
    });
    this.renderer.on('leaveNode', () => { this.tooltip.hidden = true; });
    this.container.onmousemove = (ev) => {
      this.tooltip.style.left = `${ev.offsetX + 12}px`;
      this.tooltip.style.top = `${ev.offsetY + 12}px`;
    };
  }

  /** Apply colour, size, filters and the time cut-off (epoch seconds or null for "now"). */
  style(s, time) {
    this.computeStyle(s, time);
    this.renderer.refresh();
  }

  computeStyle(s, time) {
    const d = this.data.nodes;
    const sizes = d[s.size];
    const wanted = {};
    for (const [f, v] of Object.entries(s.filters)) if (v) wanted[f] = s.labels[f].indexOf(v);
    const from = s.from ? Date.parse(s.from) / 1000 : -Infinity;
    const to = s.to ? Date.parse(s.to) / 1000 + 86400 : Infinity;
    const cut = time ?? Infinity;
    this.time = time;
    this.slider.value = time === null || time === undefined || this.tmax === this.tmin ? 1000
      : Math.round(1000 * (time - this.tmin) / (this.tmax - this.tmin));
    this.visible = new Uint8Array(d.id.length);
    // Undated models (most placeholders) cannot be placed in time: once a time or date cut is
    // set they stay on screen, dimmed, and are counted apart rather than passing as "shown".
    this.timeCut = time !== null && time !== undefined || s.from !== '' || s.to !== '';
    let dated = 0, undated = 0;
    for (let i = 0; i < d.id.length; i++) {
      let ok = true;
      for (const [f, code] of Object.entries(wanted)) if (d.colors[f][i] !== code) { ok = false; break; }
      const t = d.created_at[i];
      if (ok && Number.isNaN(t)) { undated += 1; this.visible[i] = 1; continue; }
      if (t < from || t > to || t > cut) ok = false;
      this.visible[i] = ok ? 1 : 0;
      dated += ok ? 1 : 0;
    }
    this.counts = { dated, undated };
    this.updateTimeLabel();
    this.s = { ...s, codes: d.colors[s.color], sizes, top: Math.log1p(sizes.reduce((m, v) => (v > m ? v : m), 1)) };
  }

  // Sigma hands the reducer its own copy of the attributes, so they are styled in place.
  nodeStyle(node, attrs) {
    const { codes, sizes, top, colors } = this.s;
    const i = Number(node);
    if (Number.isNaN(i)) return attrs; // a hidden corner
    attrs.color = colors[codes[i]];
    attrs.size = 1.5 + 10 * Math.log1p(sizes[i]) / top;
    if (this.timeCut && Number.isNaN(this.data.nodes.created_at[i])) { attrs.color = UNDATED; attrs.size = 1.5; }
    if (!this.visible[i]) attrs.hidden = true;
    if (i === this.selected) { attrs.highlighted = true; attrs.forceLabel = true; attrs.label = this.data.nodes.id[i]; }
    return attrs;
  }

  edgeStyle(edge, attrs) {
    const k = attrs.k;
    if (this.predicted[k]) {
      if (!this.s.predicted || this.data.edges.confidence[k] < this.s.confidence) attrs.hidden = true;
      else { attrs.color = PREDICTED; attrs.size = 1.2; }
    }
    return attrs;
  }

  colorCounts(color, nLabels) {
    const counts = new Array(nLabels).fill(0);
    const codes = this.data.nodes.colors[color];
    for (let i = 0; i < codes.length; i++) if (!this.visible || this.visible[i]) counts[codes[i]] += 1;
    return counts;
  }

  addEdge(graph, k) {
    const e = this.data.edges;
    const key = String(k);
    if (graph.hasEdge(key)) return;
    graph.addDirectedEdgeWithKey(key, e.source[k], e.target[k], { k, color: this.relationColor[e.relation[k]], size: 0.6 });
  }

  /** Row of model `id` in this family, or -1 (a linear scan: only on a click or a search). */
  row(id) {
    return this.data ? this.data.nodes.id.indexOf(id) : -1;
  }

  /** Select model `id` (with all its edges); whether the selection changed. */
  select(id) {
    const i = this.row(id);
    const next = i >= 0 ? i : null;
    if (next === this.selected) return false;
    this.selected = next;
    if (next !== null && this.skeletonOnly) {
      // Draw every edge of the selected model.
      const e = this.data.edges;
      for (let k = 0; k < e.source.length; k++) if (e.source[k] === i || e.target[k] === i) this.addEdge(this.graph, k);
    }
    return true;
  }

  highlight(id) {
    if (this.select(id)) this.renderer?.refresh();
  }

  focus(id) {
    const i = this.row(id);
    if (i < 0) return;
    this.highlight(id);
    const pos = this.renderer.getNodeDisplayData(i);
    if (pos) this.renderer.getCamera().animate({ x: pos.x, y: pos.y, ratio: 0.5 }, { duration: 300 });
  }

  /** The visible rectangle [x0, y0, x1, y1] in layout coordinates. */
  visibleRect() {
    const { width, height } = this.renderer.getDimensions();
    const a = this.renderer.viewportToGraph({ x: 0, y: 0 });
    const b = this.renderer.viewportToGraph({ x: width, y: height });
    return [Math.min(a.x, b.x), Math.min(a.y, b.y), Math.max(a.x, b.x), Math.max(a.y, b.y)];
  }

  /** Screen position of a model in CSS pixels of the container (for tests). */
  screenPosition(id) {
    const a = this.graph.getNodeAttributes(this.row(id));
    return this.renderer.graphToViewport({ x: a.x, y: a.y });
  }

  sliderTime() {
    return this.tmin + (this.tmax - this.tmin) * Number(this.slider.value) / 1000;
  }

  setTime(t) {
    const full = t >= this.tmax;
    this.onTime(full ? null : Math.round(t));
    window.dispatchEvent(new CustomEvent('atlas-restyle'));
  }

  /** "date · N models shown · M undated (dimmed)": the counts respect the filters. */
  updateTimeLabel() {
    const t = this.time ?? this.tmax;
    const { dated, undated } = this.counts;
    const date = this.tmax ? new Date(t * 1000).toISOString().slice(0, 10) : 'no dates';
    const label = `${date} · ${dated.toLocaleString()} dated models shown`
      + (undated ? ` · ${undated.toLocaleString()} undated${this.timeCut ? ' (dimmed)' : ''}` : '');
    const el = document.getElementById('time-label');
    el.textContent = label;
    el.dataset.dated = dated;
    el.dataset.undated = undated;
  }

  // Replay the family's growth in REPLAY_MS: each animation frame shows the step its time has
  // reached, so a slow frame skips steps instead of stretching the replay.
  play() {
    cancelAnimationFrame(this.timer);
    const start = performance.now();
    let drawn = 0, last = -1;
    const frame = (now) => {
      // an animation frame's timestamp may precede start (it is the frame's, not the call's): step 1 first
      const step = Math.min(REPLAY_STEPS, Math.max(1, Math.floor(((now - start) / REPLAY_MS) * REPLAY_STEPS) + 1));
      if (step !== last) {
        last = step;
        drawn += 1;
        this.slider.value = Math.round((1000 * step) / REPLAY_STEPS);
        this.setTime(this.sliderTime());
      }
      if (step < REPLAY_STEPS) this.timer = requestAnimationFrame(frame);
      else window.__atlas.replay = { ms: performance.now() - start, steps: drawn };
    };
    this.timer = requestAnimationFrame(frame);
  }

  hide() {
    cancelAnimationFrame(this.timer);
    this.container.hidden = true;
    this.tooltip.hidden = true;
  }
}
