// The model panel: metadata, relation-audit flags, lineage to the source, children by relation,
// inheritance, Hub link.
import { RELATION_COLORS, PREDICTED } from './palette.js';

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const num = (v) => (v === null || v === undefined ? '—' : Number(v).toLocaleString());
const rel = (r, predicted) => r
  ? `<span class="rel" style="background:${predicted ? PREDICTED : RELATION_COLORS[r] || '#999'}">${esc(r)}${predicted ? ' (predicted)' : ''}</span>` : '';
// Real links (keyboard-reachable, open in a new tab too); a plain click is handled in the page.
const link = (id) => `<a class="model" href="#m=${encodeURIComponent(id)}" data-id="${esc(id)}">${esc(id)}</a>`;

export function showModel(panel, d, onModel, familyName) {
  const m = d.metadata;
  const rows = [
    ['author', esc(m.author)], ['task', esc(m.pipeline_tag)], ['library', esc(m.library_name)],
    ['licence', esc(m.license)], ['created', esc(m.created_at?.slice(0, 10))],
    ['downloads', num(m.downloads)], ['likes', num(m.likes)], ['params', num(m.params)],
    ['sub-tree downloads', num(d.sub_tree_downloads)], ['descendants', num(d.descendants)],
    ['depth', d.depth], ['family', `${esc(familyName || d.component)} (${num(d.component_size)} models)`],
  ].filter(([, v]) => v !== '' && v !== undefined);
  const lineage = d.lineage.map((step) => `<li>${link(step.id)} ${rel(step.relation, step.predicted)}
      <small>${esc(step.license || '')}</small></li>`).join('');
  const children = Object.entries(d.children).map(([r, g]) => `<li>${rel(r)} ${num(g.count)}
      <ul>${g.models.map((c) => `<li>${link(c.id)} <small>${num(c.downloads)} ↓</small></li>`).join('')}
      ${g.count > g.models.length ? `<li>… ${num(g.count - g.models.length)} more</li>` : ''}</ul></li>`).join('');
  const parents = d.parents.map((p) => `<li>${link(p.id)} ${rel(p.relation, p.predicted)}
      <small>${esc(p.provenance)}${p.predicted ? ` · confidence ${p.confidence}` : ''}</small></li>`).join('');
  const lic = d.inheritance.license;
  const held = (lic.ancestor_licenses || []).map((a) => `<li>${esc(a.license)} — ${link(a.ancestor)}
      <small>${a.distance} step${a.distance === 1 ? '' : 's'} up</small></li>`).join('');
  const stricter = (lic.stricter_ancestors || []).map((a) => `<li class="warn">${esc(a.ancestor_licence)}
      (${esc(a.ancestor_class)}) at ${link(a.ancestor)}, stricter than ${esc(a.licence)}</li>`).join('');
  const inherited = (d.inheritance.datasets.inherited || []).map((r) => `<li>${esc(r.dataset)} — ${link(r.ancestor)}
      <small>${r.distance} step${r.distance === 1 ? '' : 's'} up</small></li>`).join('');
  const flags = (d.relation_flags || []).map((f) => `<p class="warn" data-testid="relation-flag">
      declared relation contradicted (${esc(f.reason)}): ${esc(f.message)}</p>`).join('');
  panel.innerHTML = `
    <button class="close" data-testid="panel-close" title="Close the panel" aria-label="Close the panel">×</button>
    <h2 data-testid="model-id">${esc(d.id)}</h2>
    <a href="${esc(d.hub_url)}" target="_blank" rel="noopener noreferrer">open on the Hub ↗</a>
    ${m.placeholder ? '<p class="warn">placeholder: referenced by a child but no record of its own</p>' : ''}
    ${flags}
    <table>${rows.map(([k, v]) => `<tr><td>${k}</td><td>${v}</td></tr>`).join('')}</table>
    <h4>Lineage to source</h4><ol data-testid="lineage">${lineage}</ol>
    <h4>Parents</h4><ul>${parents || '<li>none (a source)</li>'}</ul>
    <h4>Children by relation</h4><ul data-testid="children">${children || '<li>none</li>'}</ul>
    <h4>Inheritance <small>(from all ${num(d.inheritance.ancestors)} ancestors)</small></h4>
    <table data-testid="inheritance">
      <tr><td>licence</td><td>${esc(lic.own || '—')}${lic.differs ? '<span class="warn"> (differs from an ancestor)</span>' : ''}
        ${held ? `<ul>${held}</ul>` : ''}${stricter ? `<ul>${stricter}</ul>` : ''}</td></tr>
      <tr><td>data</td><td>${esc(d.inheritance.datasets.own.join(', ') || '—')}
        ${inherited ? `<ul>${inherited}</ul>` : ''}</td></tr>
    </table>`;
  panel.hidden = false;
  panel.querySelectorAll('a.model').forEach((a) => a.addEventListener('click', (e) => {
    if (e.ctrlKey || e.metaKey || e.shiftKey) return; // a new tab opens the link itself
    e.preventDefault();
    onModel(a.dataset.id);
  }));
}
