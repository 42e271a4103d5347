// The web atlas: a galaxy overview of every family (regl-scatterplot, WebGL points) and one family
// at a time in detail (sigma.js + graphology). All data comes from the JSON API of `modelatlas serve`;
// the page loads nothing from any other origin.
import './style.css';
import { api, apiBytes, apiTable } from './api.js';
import { familyFromTable } from './family.js';
import { categoryColors, OTHER_VALUES, PREDICTED, RELATION_COLORS } from './palette.js';
import { Overview } from './overview.js';
import { ComponentView } from './component.js';
import { showModel } from './panel.js';

const $ = (id) => document.getElementById(id);
const FILTERS = ['pipeline_tag', 'license', 'relation', 'library_name'];

// Everything the URL hash records: the shareable view.
const state = {
  component: null, model: null, color: 'relation', size: 'downloads',
  filters: {}, from: '', to: '', predicted: true, confidence: 0, time: null, lod: 50000, points: 300000,
  view: null, // the galaxy's visible rectangle [x0, y0, x1, y1] in layout coordinates (null: all)
  camera: null, cameraOf: null, // a family's camera {x, y, ratio}, and which family it belongs to
};
const atlas = {
  meta: null, overview: null, component: null, rendered: false, renderedAt: null, marks: {},
  // Galaxy level of detail: the zoomed view's rectangle (null: the whole atlas), and whether any
  // answer left models out (only then can zooming in show more).
  bbox: null, truncated: false,
  // The same for the family on screen: the rectangle its answer was asked for, whether any answer
  // for it left models out, and which family that is.
  family: { of: null, bbox: null, truncated: false },
};
const mark = (name) => { atlas.marks[name] = performance.now(); };
window.__atlas = atlas; // inspected by the end-to-end tests and the render benchmark

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  state.component = p.has('c') ? Number(p.get('c')) : null;
  state.model = p.get('m');
  state.color = p.get('color') || 'relation';
  state.size = p.get('size') || 'downloads';
  state.filters = {};
  for (const f of FILTERS) if (p.get(f)) state.filters[f] = p.get(f);
  state.from = p.get('from') || '';
  state.to = p.get('to') || '';
  state.predicted = p.get('predicted') !== '0';
  state.confidence = Number(p.get('conf') || 0);
  state.time = p.has('t') ? Number(p.get('t')) : null;
  state.lod = Math.min(Math.max(Number(p.get('lod')) || 50000, 1), 100000);
  state.points = Math.min(Math.max(Number(p.get('pts')) || 300000, 1), 3000000);
  const view = (p.get('v') || '').split(',').map(Number);
  state.view = view.length === 4 && view.every(Number.isFinite) && view[0] < view[2] && view[1] < view[3] ? view : null;
  const [x, y, ratio] = (p.get('cam') || '').split(',').map(Number);
  const camera = [x, y, ratio].every(Number.isFinite) && ratio > 0 ? { x, y, ratio } : null;
  state.camera = camera;
  state.cameraOf = camera ? state.component : null;
}

function writeHash() {
  const p = new URLSearchParams();
  if (state.component !== null) p.set('c', state.component);
  if (state.model) p.set('m', state.model);
  if (state.color !== 'relation') p.set('color', state.color);
  if (state.size !== 'downloads') p.set('size', state.size);
  for (const [k, v] of Object.entries(state.filters)) if (v) p.set(k, v);
  if (state.from) p.set('from', state.from);
  if (state.to) p.set('to', state.to);
  if (!state.predicted) p.set('predicted', '0');
  if (state.confidence) p.set('conf', state.confidence);
  if (state.time !== null) p.set('t', state.time);
  if (state.lod !== 50000) p.set('lod', state.lod);
  if (state.points !== 300000) p.set('pts', state.points);
  if (state.component === null && state.view) p.set('v', state.view.map((v) => +v.toPrecision(6)).join(','));
  if (state.component !== null && state.camera && state.cameraOf === state.component) {
    const { x, y, ratio } = state.camera;
    p.set('cam', [x, y, ratio].map((v) => +v.toPrecision(6)).join(','));
  }
  history.replaceState(null, '', '#' + p.toString());
}

function status(text) { $('status').textContent = text; }

function option(select, value, label) {
  const o = document.createElement('option');
  o.value = value; o.textContent = label;
  select.append(o);
}

function setupControls(meta) {
  for (const name of Object.keys(meta.colors)) option($('color'), name, name.replace('_', ' '));
  for (const name of meta.sizes) option($('size'), name, name.replaceAll('_', ' '));
  for (const f of FILTERS) {
    const sel = $('f-' + f);
    option(sel, '', 'all');
    meta.colors[f].labels.forEach((label, k) => {
      if (label !== OTHER_VALUES) option(sel, label, `${label} (${meta.colors[f].counts[k].toLocaleString()})`);
    });
    sel.addEventListener('change', () => { state.filters[f] = sel.value; refresh(); });
  }
  $('color').addEventListener('change', () => { state.color = $('color').value; refresh(); });
  $('size').addEventListener('change', () => { state.size = $('size').value; refresh(); });
  $('f-from').addEventListener('change', () => { state.from = $('f-from').value; refresh(); });
  $('f-to').addEventListener('change', () => { state.to = $('f-to').value; refresh(); });
  $('f-predicted').addEventListener('change', () => { state.predicted = $('f-predicted').checked; refresh(); });
  $('f-confidence').addEventListener('input', () => {
    state.confidence = Number($('f-confidence').value);
    $('f-confidence-out').textContent = state.confidence;
    refresh();
  });
  $('home').addEventListener('click', () => {
    Object.assign(state, { component: null, model: null, time: null, view: null });
    route();
  });
  setupSearch();
}

function syncControls() {
  $('color').value = state.color;
  $('size').value = state.size;
  for (const f of FILTERS) $('f-' + f).value = state.filters[f] || '';
  $('f-from').value = state.from;
  $('f-to').value = state.to;
  $('f-predicted').checked = state.predicted;
  $('f-confidence').value = state.confidence;
  $('f-confidence-out').textContent = state.confidence;
}

// Legend of the current colour feature; counts are those of what is on screen.
function renderLegend(counts) {
  const c = atlas.meta.colors[state.color];
  const colors = categoryColors(state.color, c.labels);
  const box = $('legend');
  box.replaceChildren();
  const title = document.createElement('div');
  title.innerHTML = `<b>${state.color.replace('_', ' ')}</b>`;
  box.append(title);
  c.labels.forEach((label, k) => {
    const n = counts ? counts[k] : c.counts[k];
    if (!n) return;
    const row = document.createElement('div');
    row.dataset.label = label;
    row.innerHTML = `<span class="swatch" style="background:${colors[k]}"></span><span></span>`;
    row.lastChild.textContent = `${label} (${n.toLocaleString()})`;
    box.append(row);
  });
  const edges = $('edge-legend');
  edges.replaceChildren();
  if (state.component === null) return;
  const head = document.createElement('div');
  head.innerHTML = '<b>edges</b>';
  edges.append(head);
  for (const [rel, col] of Object.entries(RELATION_COLORS)) {
    if (rel === 'source') continue;
    const row = document.createElement('div');
    row.innerHTML = `<span class="line" style="background:${col}"></span>${rel}`;
    edges.append(row);
  }
  const pred = document.createElement('div');
  pred.innerHTML = `<span class="line dashed" style="color:${PREDICTED}"></span>predicted`;
  edges.append(pred);
}

function markRendered() {
  atlas.rendered = true;
  atlas.renderedAt = performance.now();
  document.body.dataset.rendered = state.component === null ? 'overview' : `component-${state.component}`;
}

// The big request of the first view starts with the page, alongside /api/meta and WebGL set-up.
const pending = new Map();
function fetchOnce(url, get) {
  if (!pending.has(url)) pending.set(url, get(url));
  const p = pending.get(url);
  pending.delete(url);
  return p;
}

function overviewUrl() {
  const params = new URLSearchParams({ color: state.color, size: state.size, max_points: state.points });
  for (const [k, v] of Object.entries(state.filters)) if (v) params.set(k, v);
  if (state.from) params.set('created_from', state.from);
  if (state.to) params.set('created_to', state.to);
  if (atlas.bbox) params.set('bbox', atlas.bbox.join(','));
  return '/api/overview?' + params;
}

// Zooming settled on `rect`: fetch the models inside it (their own level of detail), unless every
// model is already drawn, or the rectangle holds the whole atlas and the whole atlas is drawn.
/** Whether rectangle `rect` ([x0, y0, x1, y1]) holds all of `bounds`. */
const covers = (rect, bounds) => rect[0] <= bounds[0] && rect[1] <= bounds[1] && rect[2] >= bounds[2] && rect[3] >= bounds[3];

function onView(rect) {
  const whole = covers(rect, atlas.meta.bounds);
  state.view = whole ? null : rect;
  writeHash();
  if (!atlas.truncated || (whole && atlas.bbox === null)) return;
  atlas.bbox = whole ? null : rect;
  showOverview(false).catch((err) => status(err.message));
}

function graphUrl() {
  const box = atlas.family.of === state.component && atlas.family.bbox ? `&bbox=${atlas.family.bbox.join(',')}` : '';
  return `/api/components/${state.component}/graph?max_nodes=${state.lod}&format=arrow${box}`;
}

// The family's camera settled: fetch the models in view (their own level of detail) when an
// answer for this family left models out, as the galaxy does.
let familySeq = 0;
function onFamilyCamera(camera) {
  state.camera = camera; state.cameraOf = state.component; writeHash();
  const f = atlas.family;
  if (f.of !== state.component || !f.truncated || !atlas.component?.data) return;
  const rect = atlas.component.visibleRect();
  const whole = covers(rect, atlas.component.data.bounds);
  if (whole && f.bbox === null) return;
  const next = whole ? null : rect;
  if (next && f.bbox && next.every((v, k) => Math.abs(v - f.bbox[k]) <= 1e-9 * (1 + Math.abs(v)))) return;
  f.bbox = next;
  showComponent()
    .then(() => { if (state.model) atlas.component.highlight(state.model); })
    .catch((err) => status(err.message));
}

let overviewSeq = 0;

/** Fetch and draw the galaxy; `reset`: back to the whole atlas (else keep the camera and bbox). */
async function showOverview(reset) {
  atlas.component?.hide();
  $('timeline').hidden = true;
  $('banner').hidden = true;
  if (reset) atlas.bbox = null;
  const mine = ++overviewSeq;
  const request = fetchOnce(overviewUrl(), apiBytes);
  if (!atlas.overview) {
    atlas.overview = new Overview($('overview'), $('tooltip'), atlas.meta.bounds, {
      onComponent: (component) => { state.component = component; state.model = null; state.time = null; route(); },
      onView,
    });
  }
  status('loading galaxy…');
  const { buffer: buf, total } = await request;
  if (mine !== overviewSeq) return; // a newer view or filter won
  mark('fetched');
  const colors = categoryColors(state.color, atlas.meta.colors[state.color].labels);
  const counts = await atlas.overview.show(buf, colors, reset, state.view);
  renderLegend(counts);
  const shown = buf.byteLength / 20;
  if (atlas.bbox) atlas.truncated ||= shown < total;
  else atlas.truncated = shown < total;
  const where = atlas.bbox ? ' in view' : '';
  status(shown < total
    ? `level of detail: ${shown.toLocaleString()} of ${total.toLocaleString()} models${where} (largest sub-trees) · ${atlas.meta.components.toLocaleString()} families`
    : `${shown.toLocaleString()} models${where} · ${atlas.meta.components.toLocaleString()} families`);
  markRendered();
}

async function showComponent() {
  atlas.overview?.hide();
  if (!atlas.component) {
    atlas.component = new ComponentView($('graph'), $('tooltip'), {
      onModel: (id) => { state.model = id; writeHash(); openModel(id); },
      onTime: (t) => { state.time = t; writeHash(); },
      onCamera: onFamilyCamera,
    });
  }
  if (atlas.family.of !== state.component) atlas.family = { of: state.component, bbox: null, truncated: false };
  const mine = ++familySeq;
  status(`loading family ${state.component}…`);
  const data = familyFromTable(await fetchOnce(graphUrl(), apiTable));
  if (mine !== familySeq) return; // a newer view won
  mark('fetched');
  atlas.family.truncated ||= data.truncated;
  atlas.component.load(data, currentStyle(), state.time, state.cameraOf === state.component ? state.camera : null);
  const notes = [];
  const where = atlas.family.bbox ? ' in view' : '';
  if (data.truncated) {
    notes.push(`level of detail: ${data.shown_nodes.toLocaleString()} of ${data.candidates.toLocaleString()} models${where} (largest sub-trees)`);
  } else if (atlas.family.bbox) {
    notes.push(`all ${data.candidates.toLocaleString()} models in view`);
  }
  if (atlas.component.skeletonOnly) notes.push('edges: the largest sub-trees, and all of the selected model');
  $('banner').hidden = notes.length === 0;
  $('banner').textContent = notes.join(' · ');
  renderLegend(atlas.component.colorCounts(state.color, atlas.meta.colors[state.color].labels.length));
  $('timeline').hidden = false;
  status(`family ${state.component} · ${data.total_nodes.toLocaleString()} models`);
  markRendered();
}

function currentStyle() {
  return {
    color: state.color,
    colors: categoryColors(state.color, atlas.meta.colors[state.color].labels),
    labels: Object.fromEntries(FILTERS.map((f) => [f, atlas.meta.colors[f].labels])),
    size: state.size, filters: state.filters, from: state.from, to: state.to,
    predicted: state.predicted, confidence: state.confidence,
  };
}

async function openModel(id) {
  try {
    const detail = await api('/api/models/' + id.split('/').map(encodeURIComponent).join('/'));
    showModel($('panel'), detail, (other) => selectModel(other));
    atlas.component?.highlight(id);
  } catch (err) {
    status(err.message);
  }
}

// Open a model from anywhere: switch to its family if needed, then select it.
async function selectModel(id) {
  const detail = await api('/api/models/' + id.split('/').map(encodeURIComponent).join('/'));
  state.model = id;
  if (state.component !== detail.component) {
    state.component = detail.component;
    state.time = null;
    await route();
  } else {
    writeHash();
    await openModel(id);
  }
  atlas.component?.focus(id);
}

async function refresh() {
  writeHash();
  if (state.component === null) await showOverview(false);
  else {
    atlas.component.style(currentStyle(), state.time);
    renderLegend(atlas.component.colorCounts(state.color, atlas.meta.colors[state.color].labels.length));
  }
}

async function route() {
  writeHash();
  syncControls();
  try {
    if (state.component === null) {
      $('panel').hidden = true;
      await showOverview(true);
    } else {
      await showComponent();
      if (state.model) await openModel(state.model);
      else $('panel').hidden = true;
    }
  } catch (err) {
    status(err.message);
  }
}

function setupSearch() {
  const input = $('search');
  const list = $('suggestions');
  let seq = 0;
  let active = -1;
  const choose = (id) => { list.hidden = true; input.value = id; selectModel(id).catch((e) => status(e.message)); };
  input.addEventListener('input', async () => {
    const q = input.value.trim();
    const mine = ++seq;
    if (!q) { list.hidden = true; return; }
    const res = await api('/api/search?' + new URLSearchParams({ q, limit: 12 })).catch(() => ({ results: [] }));
    if (mine !== seq) return; // a newer keystroke won
    list.replaceChildren();
    active = -1;
    for (const hit of res.results) {
      const li = document.createElement('li');
      li.setAttribute('role', 'option');
      li.dataset.id = hit.id;
      li.innerHTML = '<span></span><small></small>';
      li.firstChild.textContent = hit.id;
      li.lastChild.textContent = `${hit.downloads.toLocaleString()} ↓`;
      li.addEventListener('mousedown', (e) => { e.preventDefault(); choose(hit.id); });
      list.append(li);
    }
    list.hidden = res.results.length === 0;
  });
  input.addEventListener('keydown', (e) => {
    const items = [...list.children];
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      active = (active + (e.key === 'ArrowDown' ? 1 : -1) + items.length) % Math.max(items.length, 1);
      items.forEach((li, k) => li.classList.toggle('active', k === active));
      e.preventDefault();
    } else if (e.key === 'Enter' && items.length) {
      choose(items[Math.max(active, 0)].dataset.id);
    } else if (e.key === 'Escape') {
      list.hidden = true;
    }
  });
  input.addEventListener('blur', () => { setTimeout(() => { list.hidden = true; }, 150); });
}

async function loadFamilies() {
  const res = await api('/api/components?limit=15');
  const list = $('families');
  for (const c of res.components) {
    const li = document.createElement('li');
    li.textContent = `${c.roots[0] || 'family ' + c.component} (${c.size.toLocaleString()})`;
    li.dataset.component = c.component;
    li.addEventListener('click', () => { state.component = c.component; state.model = null; state.time = null; route(); });
    list.append(li);
  }
}

async function main() {
  mark('script');
  readHash();
  if (state.component === null) pending.set(overviewUrl(), apiBytes(overviewUrl()));
  else pending.set(graphUrl(), apiTable(graphUrl()));
  atlas.meta = await api('/api/meta');
  mark('meta');
  setupControls(atlas.meta);
  window.addEventListener('hashchange', () => { readHash(); route(); });
  window.addEventListener('atlas-restyle', () => { refresh(); });
  await Promise.all([route(), loadFamilies()]);
}

main().catch((err) => status(err.message));
