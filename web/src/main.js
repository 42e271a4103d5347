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
  filters: {}, from: '', to: '', predicted: true, confidence: 0, time: null, lod: 50000, points: 300000, minFamily: 1,
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
  names: new Map(), // family names (component -> /api/families answer)
  labels: null,
};
const mark = (name) => { atlas.marks[name] = performance.now(); };
window.__atlas = atlas; // inspected by the end-to-end tests and the render benchmark

// Any id the atlas may hold (ingest keeps ids that are not ASCII or are long, flagged
// odd_model_id): the server looks it up; the page only bounds its length and refuses controls.
const MODEL_ID = /^[^\u0000-\u001f\u007f]{1,500}$/u;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DEFAULTS = { color: 'relation', size: 'downloads', lod: 50000, points: 300000, minFamily: 1 };
const int = (text, lo, hi) => (/^\d+$/.test(text) && Number(text) >= lo && Number(text) <= hi ? Number(text) : null);

/** Read the shareable view from the URL hash. Every value is checked (against `/api/meta` once
 * it is known); a bad one falls back to its default and is named in a notice. */
function readHash(meta = atlas.meta) {
  const p = new URLSearchParams(location.hash.slice(1));
  const bad = [];
  const take = (key, ok, value, fallback) => {
    if (!p.has(key)) return fallback;
    if (ok) return value;
    bad.push(`${key}=${p.get(key)}`);
    return fallback;
  };
  const c = p.get('c');
  const nComp = meta ? meta.components - 1 : Number.MAX_SAFE_INTEGER;
  state.component = take('c', c !== null && int(c, 0, nComp) !== null, int(c ?? '', 0, nComp), null);
  state.model = take('m', MODEL_ID.test(p.get('m') || ''), p.get('m'), null);
  const colors = meta ? Object.keys(meta.colors) : null;
  state.color = take('color', !colors || colors.includes(p.get('color')), p.get('color'), DEFAULTS.color);
  state.size = take('size', !meta || meta.sizes.includes(p.get('size')), p.get('size'), DEFAULTS.size);
  state.filters = {};
  for (const f of FILTERS) {
    const v = p.get(f);
    const ok = !meta || meta.colors[f].labels.includes(v);
    const value = take(f, v && ok, v, '');
    if (value) state.filters[f] = value;
  }
  const validDate = (v) => DATE.test(v || '') && !Number.isNaN(Date.parse(v));
  state.from = take('from', validDate(p.get('from')), p.get('from'), '');
  state.to = take('to', validDate(p.get('to')), p.get('to'), '');
  state.predicted = take('predicted', ['0', '1'].includes(p.get('predicted')), p.get('predicted') !== '0', true);
  const conf = Number(p.get('conf'));
  state.confidence = take('conf', p.get('conf') !== '' && conf >= 0 && conf <= 1, conf, 0);
  // A time must be a date the page can show: inside the atlas's created_at range (± a year).
  const t = Number(p.get('t'));
  const range = meta?.created_at?.map((v) => Date.parse(v) / 1000);
  const okTime = p.get('t') !== '' && Number.isFinite(t) && (range ? t >= range[0] - 3.2e7 && t <= range[1] + 3.2e7
    : Math.abs(t) < 8.64e12);
  state.time = take('t', okTime, t, null);
  state.lod = take('lod', int(p.get('lod') || '', 1, 100000) !== null, Number(p.get('lod')), DEFAULTS.lod);
  state.points = take('pts', int(p.get('pts') || '', 1, 3000000) !== null, Number(p.get('pts')), DEFAULTS.points);
  state.minFamily = take('min', int(p.get('min') || '', 1, 1e9) !== null, Number(p.get('min')), DEFAULTS.minFamily);
  const view = (p.get('v') || '').split(',').map(Number);
  const okView = view.length === 4 && view.every(Number.isFinite) && view[0] < view[2] && view[1] < view[3];
  state.view = take('v', okView, view, null);
  const [x, y, ratio] = (p.get('cam') || '').split(',').map(Number);
  const okCam = [x, y, ratio].every(Number.isFinite) && ratio > 0;
  state.camera = take('cam', okCam, { x, y, ratio }, null);
  state.cameraOf = state.camera ? state.component : null;
  return bad;
}

/** Record the view in the URL: `push` makes a history entry (Back returns to the view before). */
function writeHash(push = false) {
  const p = new URLSearchParams();
  if (state.component !== null) p.set('c', state.component);
  if (state.model) p.set('m', state.model);
  if (state.color !== DEFAULTS.color) p.set('color', state.color);
  if (state.size !== DEFAULTS.size) p.set('size', state.size);
  for (const [k, v] of Object.entries(state.filters)) if (v) p.set(k, v);
  if (state.from) p.set('from', state.from);
  if (state.to) p.set('to', state.to);
  if (!state.predicted) p.set('predicted', '0');
  if (state.confidence) p.set('conf', state.confidence);
  if (state.time !== null) p.set('t', state.time);
  if (state.lod !== DEFAULTS.lod) p.set('lod', state.lod);
  if (state.points !== DEFAULTS.points) p.set('pts', state.points);
  if (state.minFamily !== DEFAULTS.minFamily) p.set('min', state.minFamily);
  if (state.component === null && state.view) p.set('v', state.view.map((v) => +v.toPrecision(6)).join(','));
  if (state.component !== null && state.camera && state.cameraOf === state.component) {
    const { x, y, ratio } = state.camera;
    p.set('cam', [x, y, ratio].map((v) => +v.toPrecision(6)).join(','));
  }
  const hash = '#' + p.toString();
  if (push && hash !== location.hash) history.pushState(null, '', hash);
  else history.replaceState(null, '', hash);
}

/** A message the user must see (a failed click, a bad URL value); stays until closed or replaced. */
function notice(text) {
  const box = $('notice');
  box.hidden = !text;
  box.firstElementChild.textContent = text || '';
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
      // Values no model has (e.g. "unknown (0)") are not offered: choosing them would show nothing.
      if (label !== OTHER_VALUES && meta.colors[f].counts[k] > 0) {
        option(sel, label, `${label} (${meta.colors[f].counts[k].toLocaleString()})`);
      }
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
  $('f-min').addEventListener('change', () => {
    const v = int($('f-min').value, 1, 1e9);
    state.minFamily = v ?? 1;
    $('f-min').value = state.minFamily;
    refresh();
  });
  // Controls that would do nothing are not shown: no predictions, no predicted-edge settings.
  $('predicted-box').hidden = !meta.predicted_edges;
  $('home').addEventListener('click', () => {
    Object.assign(state, { component: null, model: null, time: null, view: null });
    navigate();
  });
  $('help-open').addEventListener('click', () => toggleHelp(true));
  $('help-close').addEventListener('click', () => toggleHelp(false));
  $('notice').lastElementChild.addEventListener('click', () => notice(''));
  $('menu').addEventListener('click', () => {
    const open = $('sidebar').classList.toggle('open');
    $('menu').setAttribute('aria-expanded', open);
  });
  document.addEventListener('keydown', (e) => {
    const typing = /INPUT|SELECT|TEXTAREA/.test(document.activeElement?.tagName || '');
    if (e.key === '?' && !typing) { toggleHelp($('help').hidden); e.preventDefault(); }
    else if (e.key === 'Escape' && !$('help').hidden) toggleHelp(false);
    else if (e.key === '/' && !typing) { $('search').focus(); e.preventDefault(); }
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
  $('f-min').value = state.minFamily;
}

function toggleHelp(open) {
  $('help').hidden = !open;
  if (open) $('help-close').focus();
  else $('help-open').focus();
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
  // Drawn as on the canvas: solid purple, thicker.
  pred.innerHTML = `<span class="line thick" style="background:${PREDICTED}"></span>predicted`;
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
  if (state.minFamily > 1) params.set('min_family', state.minFamily);
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
  showOverview(false).catch(fail);
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
    .catch(fail);
}

let overviewSeq = 0;

/** Fetch and draw the galaxy; `reset`: back to the whole atlas (else keep the camera and bbox). */
async function showOverview(reset) {
  atlas.component?.hide();
  $('timeline').hidden = true;
  $('banner').hidden = true;
  if (reset) atlas.bbox = null;
  familySeq += 1; // a family answer still on its way is no longer wanted
  const mine = ++overviewSeq;
  const request = fetchOnce(overviewUrl(), apiBytes);
  if (!atlas.overview) {
    atlas.overview = new Overview($('overview'), $('tooltip'), atlas.meta.bounds, {
      onModel: (id, component) => {
        Object.assign(state, { component, model: id, time: null, camera: null });
        navigate();
      },
      onView, onError: fail, relationLabels: atlas.meta.colors.relation.labels,
    });
  }
  const labels = labelsOnce();
  status('loading galaxy…');
  const [{ buffer: buf, total }] = await Promise.all([request, labels]);
  if (mine !== overviewSeq) return; // a newer view or filter won
  atlas.overview.setLabels(atlas.labels, state.minFamily);
  mark('fetched');
  const colors = categoryColors(state.color, atlas.meta.colors[state.color].labels);
  const counts = await atlas.overview.show(buf, colors, reset, state.view);
  renderLegend(counts);
  const shown = buf.byteLength / 20;
  if (atlas.bbox) atlas.truncated ||= shown < total;
  else atlas.truncated = shown < total;
  const where = atlas.bbox ? ' in view' : '';
  const L = atlas.labels;
  const families = `${L.families_multi.toLocaleString()} families + ${L.single_models.toLocaleString()} single models`
    + (state.minFamily > 1 ? ` · families under ${state.minFamily.toLocaleString()} models hidden` : '');
  status(shown < total
    ? `level of detail: ${shown.toLocaleString()} of ${total.toLocaleString()} models${where} (largest sub-trees) · ${families}`
    : `${shown.toLocaleString()} models${where} · ${families}`);
  markRendered();
}

async function showComponent() {
  atlas.overview?.hide();
  if (!atlas.component) {
    atlas.component = new ComponentView($('graph'), $('tooltip'), {
      onModel: (id) => { state.model = id; writeHash(true); openModel(id); },
      onTime: (t) => { state.time = t; writeHash(); },
      onCamera: onFamilyCamera,
    });
  }
  if (atlas.family.of !== state.component) atlas.family = { of: state.component, bbox: null, truncated: false };
  overviewSeq += 1; // a galaxy answer still on its way is no longer wanted
  const mine = ++familySeq;
  status('loading family…');
  const answer = fetchOnce(graphUrl(), apiTable);
  const [table, { name }] = await Promise.all([answer, familyName(state.component)]);
  const data = familyFromTable(table);
  if (mine !== familySeq) return; // a newer view won
  mark('fetched');
  atlas.family.truncated ||= data.truncated;
  atlas.component.load(data, currentStyle(), state.time, state.cameraOf === state.component ? state.camera : null,
    state.model);
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
  status(`family ${name} · ${data.total_nodes.toLocaleString()} models`);
  $('family-name').textContent = name;
  $('family-name').hidden = false;
  showRoots(await familyName(state.component));
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

/** The galaxy's labels (`/api/labels`), asked once (in parallel with the first points). */
let labelsAsked = null;
function labelsOnce() {
  labelsAsked ??= api('/api/labels?limit=60').then((res) => {
    atlas.labels = res;
    for (const f of res.families) atlas.names.set(f.component, f);
    return res;
  });
  return labelsAsked;
}

/** A family's name and roots (`/api/families/{c}`), fetched once. */
async function familyName(c) {
  if (!atlas.names.has(c)) atlas.names.set(c, await api(`/api/families/${c}`));
  return atlas.names.get(c);
}

const modelUrl = (id) => '/api/models/' + id.split('/').map(encodeURIComponent).join('/');

/** Show model `id`'s panel. On failure the panel and the URL drop the model and the error is shown. */
async function openModel(id) {
  try {
    // The family's name is asked alongside (the model is normally in the family on screen).
    const guess = state.component !== null ? familyName(state.component).catch(() => null) : null;
    const detail = await fetchOnce(modelUrl(id), api);
    if (state.model !== id) return; // another model was chosen meanwhile
    const fam = detail.component === state.component && guess ? (await guess) ?? await familyName(detail.component)
      : await familyName(detail.component);
    showModel($('panel'), detail, (other) => selectModel(other).catch(fail), fam.name);
    $('panel').querySelector('.close').addEventListener('click', () => { state.model = null; navigate(); });
    atlas.component?.highlight(id);
    document.body.dataset.model = id;
  } catch (err) {
    if (state.model === id) { state.model = null; writeHash(); $('panel').hidden = true; }
    fail(new Error(`cannot open ${id}: ${err.message}`));
  }
}

/** Report an error where the user looks (and in the status line). */
function fail(err) {
  status(err.message);
  notice(err.message);
}

// Open a model from anywhere: switch to its family if needed, then select it (a history entry).
async function selectModel(id) {
  let detail;
  try {
    detail = await api(modelUrl(id));
  } catch (err) {
    throw new Error(`cannot open ${id}: ${err.message}`);
  }
  state.model = id;
  if (state.component !== detail.component) {
    Object.assign(state, { component: detail.component, time: null, camera: null });
    await navigate();
  } else {
    writeHash(true);
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

/** Every root of the family on screen (a family joined by merges has several), as buttons. */
function showRoots(fam) {
  const list = $('roots');
  list.replaceChildren();
  for (const id of fam.roots) {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.className = 'linklike';
    b.textContent = id;
    b.addEventListener('click', () => selectModel(id).catch(fail));
    li.append(b);
    list.append(li);
  }
  const more = fam.root_count - fam.roots.length;
  if (more > 0) {
    const li = document.createElement('li');
    li.textContent = `… ${more.toLocaleString()} more`;
    list.append(li);
  }
  $('roots-count').textContent = `(${fam.root_count.toLocaleString()})`;
  $('roots-box').hidden = false;
}

/** A new view the user chose: a history entry, then draw it. */
function navigate() {
  writeHash(true);
  return route();
}

async function route() {
  syncControls();
  notice('');
  document.body.dataset.model = '';
  try {
    if (state.component === null) {
      $('panel').hidden = true;
      $('family-name').hidden = true;
      $('roots-box').hidden = true;
      await showOverview(true);
    } else {
      // The same family still on screen (Back/Forward between its models): restyle, no reload.
      const same = atlas.component?.data && !$('graph').hidden && atlas.family.of === state.component
        && atlas.component.data.component === state.component;
      if (same) refresh();
      else await showComponent();
      if (state.model) await openModel(state.model);
      else { $('panel').hidden = true; atlas.component?.highlight(null); }
    }
  } catch (err) {
    fail(err);
  }
}

function setupSearch() {
  const input = $('search');
  const list = $('suggestions');
  let seq = 0;
  let active = -1;
  let results = null; // the answer for the current text (null while it is being asked)
  const choose = (id) => {
    list.hidden = true; input.value = id; input.setAttribute('aria-expanded', 'false');
    selectModel(id).catch(fail);
  };
  const ask = async () => {
    const q = input.value.trim();
    const mine = ++seq;
    results = null;
    if (!q) { list.hidden = true; return null; }
    const res = await api('/api/search?' + new URLSearchParams({ q: q.slice(0, 200), limit: 12 }))
      .catch((err) => ({ results: [], error: err.message }));
    if (mine !== seq) return null; // a newer keystroke won
    results = res.results;
    list.replaceChildren();
    active = -1;
    for (const [k, hit] of res.results.entries()) {
      const li = document.createElement('li');
      li.setAttribute('role', 'option');
      li.id = `suggestion-${k}`;
      li.dataset.id = hit.id;
      li.innerHTML = '<span></span><small></small>';
      li.firstChild.textContent = hit.id;
      li.lastChild.textContent = `${hit.downloads.toLocaleString()} ↓ · ${hit.family}`;
      li.addEventListener('mousedown', (e) => { e.preventDefault(); choose(hit.id); });
      list.append(li);
    }
    if (!res.results.length) {
      const li = document.createElement('li');
      li.className = 'empty';
      li.dataset.testid = 'no-results';
      li.textContent = res.error ? `search failed: ${res.error}` : `no model matches “${q}”`;
      list.append(li);
    }
    list.hidden = false;
    input.setAttribute('aria-expanded', 'true');
    return res.results;
  };
  input.addEventListener('input', () => { ask(); });
  input.addEventListener('keydown', async (e) => {
    const items = [...list.querySelectorAll('li[role=option]')];
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      if (!items.length) return;
      active = (active + (e.key === 'ArrowDown' ? 1 : -1) + items.length) % items.length;
      items.forEach((li, k) => li.classList.toggle('active', k === active));
      input.setAttribute('aria-activedescendant', items[active].id);
      e.preventDefault();
    } else if (e.key === 'Enter') {
      // Enter acts even before the answer came: ask, then open the highlighted (or best) hit.
      e.preventDefault();
      const hits = results ?? await ask();
      if (hits && hits.length) choose(active >= 0 && items[active] ? items[active].dataset.id : hits[0].id);
    } else if (e.key === 'Escape') {
      list.hidden = true;
      input.setAttribute('aria-expanded', 'false');
    }
  });
  input.addEventListener('blur', () => { setTimeout(() => { list.hidden = true; }, 150); });
}

async function loadFamilies() {
  const res = await labelsOnce();
  const list = $('families');
  for (const f of res.families.slice(0, 15)) {
    atlas.names.set(f.component, f);
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.className = 'linklike';
    b.textContent = `${f.name} (${f.size.toLocaleString()})`;
    b.title = f.roots.join(', ');
    b.dataset.component = f.component;
    b.addEventListener('click', () => {
      Object.assign(state, { component: f.component, model: null, time: null, camera: null });
      navigate();
    });
    li.append(b);
    list.append(li);
  }
}

function badValues(bad) {
  if (bad.length) notice(`ignored ${bad.length === 1 ? 'a bad URL value' : 'bad URL values'}: ${bad.join(', ')} (defaults used)`);
}

async function main() {
  mark('script');
  readHash(null); // syntax only: the first request starts before /api/meta answers
  const first = state.component === null ? overviewUrl() : graphUrl();
  const early = (state.component === null ? apiBytes : apiTable)(first);
  early.catch(() => {}); // a bad URL value: the checked view below asks again
  pending.set(first, early);
  if (state.model) { // a shared model: its panel's answer is asked now too
    const detail = api(modelUrl(state.model));
    detail.catch(() => {});
    pending.set(modelUrl(state.model), detail);
  }
  labelsOnce().catch(() => {});
  atlas.meta = await api('/api/meta');
  mark('meta');
  setupControls(atlas.meta);
  const bad = readHash();
  if (bad.length) writeHash();
  // Back and Forward: the URL changed under the page (history entries, or a pasted hash).
  window.addEventListener('popstate', () => {
    const problems = readHash();
    route().then(() => badValues(problems));
  });
  window.addEventListener('atlas-restyle', () => { refresh(); });
  const shown = route().then(() => badValues(bad));
  await Promise.all([shown, loadFamilies()]);
}

main().catch(fail);
