// One family's answer (/api/components/{c}/graph?format=arrow, see modelatlas/viz/server.py) as
// the plain typed arrays the family view draws from. Nothing is copied that Arrow already holds
// as a typed array; only model ids become JS strings.

const COLOR_PREFIX = 'color_';

/** Column `name`'s only chunk (the server writes one unsliced record batch). */
function only(table, name) {
  const vector = table.getChild(name);
  if (!vector) throw new Error(`the family answer has no column ${name}`);
  if (vector.data.length !== 1 || vector.data[0].offset !== 0) {
    throw new Error(`the family answer's column ${name} is not one unsliced batch`);
  }
  return vector.data[0];
}

/** The values of a fixed-width column (buffers may carry padding past the last value). */
const values = (data) => data.values.subarray(0, data.length);

/** A UTF-8 column as strings: one decode of the whole buffer when it is ASCII (byte offsets are
 * then character offsets), else one decode per value. */
function strings(data) {
  const o = data.valueOffsets;
  const out = new Array(data.length);
  const text = new TextDecoder().decode(data.values.subarray(0, o[data.length]));
  if (text.length === o[data.length]) {
    for (let i = 0; i < data.length; i++) out[i] = text.slice(o[i], o[i + 1]);
  } else {
    const decoder = new TextDecoder();
    for (let i = 0; i < data.length; i++) out[i] = decoder.decode(data.values.subarray(o[i], o[i + 1]));
  }
  return out;
}

/** Codes and labels of a dictionary-encoded child. */
function dictionary(data) {
  return { codes: values(data), labels: data.dictionary.toArray() };
}

/** `{component, total_nodes, shown_nodes, truncated, candidates, bounds, nodes, edges}` from the Arrow table. */
export function familyFromTable(table) {
  const meta = table.schema.metadata;
  const nodes = { colors: {} };
  let adjacency = null;
  for (const field of table.schema.fields) {
    const name = field.name;
    if (name === 'out_edges') adjacency = only(table, name);
    else if (name === 'id') nodes.id = strings(only(table, name));
    else if (name.startsWith(COLOR_PREFIX)) nodes.colors[name.slice(COLOR_PREFIX.length)] = values(only(table, name));
    else nodes[name] = values(only(table, name));
  }
  // Out-edges are a list column: offsets[i]..offsets[i + 1] are the edges leaving node i.
  const offsets = adjacency.valueOffsets;
  const item = adjacency.children[0];
  const child = Object.fromEntries(item.type.children.map((f, k) => [f.name, item.children[k]]));
  const m = offsets[adjacency.length];
  const source = new Int32Array(m);
  for (let i = 0; i < adjacency.length; i++) source.fill(i, offsets[i], offsets[i + 1]);
  const relation = dictionary(child.relation);
  const provenance = dictionary(child.provenance);
  return {
    component: Number(meta.get('component')),
    total_nodes: Number(meta.get('total_nodes')),
    shown_nodes: Number(meta.get('shown_nodes')),
    truncated: meta.get('truncated') === 'true',
    candidates: Number(meta.get('candidates')),
    bounds: meta.get('bounds').split(',').map(Number),
    nodes,
    edges: {
      source, target: values(child.target), confidence: values(child.confidence),
      relation: relation.codes, relationLabels: relation.labels,
      provenance: provenance.codes, provenanceLabels: provenance.labels,
    },
  };
}
