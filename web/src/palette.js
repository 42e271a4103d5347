// Colours shared with the matplotlib figures (modelatlas/viz/figure.py): light blue = unknown.
export const UNKNOWN = '#add8e6';
export const OTHER = '#a9a9a9';
/** Label the server gives pooled rare values (modelatlas/viz/data.py OTHER). */
export const OTHER_VALUES = '(other values)';
export const PREDICTED = '#8e44ad';
export const RELATION_COLORS = {
  finetune: '#e6194b', adapter: '#3cb44b', quantized: '#4363d8', merge: '#f58231',
  unknown: UNKNOWN, source: '#222222',
};
const PALETTE = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#42d4f4', '#f032e6', '#bfef45',
  '#fabed4', '#469990', '#dcbeff', '#9a6324', '#800000', '#aaffc3', '#808000', '#000075', '#a9a9a9'];

/** One colour per category label of `feature` (same rule as figure.category_colors). */
export function categoryColors(feature, labels) {
  return labels.map((label, k) => {
    if (label === 'unknown') return UNKNOWN;
    if (feature === 'relation' && RELATION_COLORS[label]) return RELATION_COLORS[label];
    if (label === OTHER_VALUES) return OTHER;
    return PALETTE[(k - 1) % PALETTE.length];
  });
}
