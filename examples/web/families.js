// Example curves of the built-in families (log-PDFs on the bundle's grid), for the "pick an example" list.

function lgamma(x) {
  // Lanczos approximation (g = 7, n = 9): ~15 significant digits for x > 0.
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lgamma(1 - x);
  const xx = x - 1;
  let a = c[0];
  const t = xx + 7.5;
  for (let i = 1; i < 9; i += 1) a += c[i] / (xx + i);
  return 0.5 * Math.log(2 * Math.PI) + (xx + 0.5) * Math.log(t) - t + Math.log(a);
}

const LOGPDF = {
  beta: ([a, b]) => (x) => (a - 1) * Math.log(x) + (b - 1) * Math.log1p(-x) - (lgamma(a) + lgamma(b) - lgamma(a + b)),
  gamma: ([k, s]) => (x) => (k - 1) * Math.log(x) - x / s - lgamma(k) - k * Math.log(s),
  normal: ([m, s]) => (x) => -0.5 * ((x - m) / s) ** 2 - Math.log(s) - 0.5 * Math.log(2 * Math.PI),
};

const EXAMPLES = {
  beta: [[2, 5], [0.5, 0.5], [3, 3], [4.5, 1.2]],
  gamma: [[2, 1], [4, 0.7], [1.2, 1.8]],
  normal: [[0, 1], [-1, 0.7], [1.5, 1.6]],
};

// [{label, curve}] for the bundle's family, or [] for custom data.
export function exampleCurves(family, grid) {
  const name = family && family.name;
  if (!LOGPDF[name]) return [];
  const names = Object.keys(family.params || {});
  return EXAMPLES[name].map((p) => ({
    label: `${name}(${p.map((v, i) => `${names[i] || `p${i}`}=${v}`).join(', ')})`,
    curve: grid.map(LOGPDF[name](p)),
  }));
}

export const isBuiltIn = (family) => Boolean(family && LOGPDF[family.name]);
