// Levenberg-Marquardt on the latent code, in JavaScript over decoder calls (as the Python runtime's "lm").
// decodeRows(rows) -> Promise of rows: one call decodes the point and its forward-difference neighbours.

function solve(a, b) {
  // Gaussian elimination with partial pivoting on a small dense system (d x d).
  const n = b.length; const m = a.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < n; c += 1) {
    let p = c;
    for (let r = c + 1; r < n; r += 1) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    [m[c], m[p]] = [m[p], m[c]];
    if (Math.abs(m[c][c]) < 1e-300) return null;
    for (let r = c + 1; r < n; r += 1) {
      const f = m[r][c] / m[c][c];
      for (let k = c; k <= n; k += 1) m[r][k] -= f * m[c][k];
    }
  }
  const x = new Array(n).fill(0);
  for (let r = n - 1; r >= 0; r -= 1) {
    let s = m[r][n];
    for (let k = r + 1; k < n; k += 1) s -= m[r][k] * x[k];
    x[r] = s / m[r][r];
  }
  return x;
}

async function probe(decodeRows, z) {
  const d = z.length;
  const h = z.map((v) => 1e-3 * Math.max(1, Math.abs(v)));
  const rows = [z, ...z.map((_, k) => z.map((v, j) => (j === k ? v + h[k] : v)))];
  const out = await decodeRows(rows);
  const f = out[0];
  const jac = Array.from({ length: d }, (_, k) => out[k + 1].map((v, p) => (v - f[p]) / h[k]));
  return { f, jac };
}

const sq = (r) => r.reduce((s, v) => s + v * v, 0);

export async function fitLatent(decodeRows, target, z0, { maxIter = 50, ftol = 1e-7, emulatorRms = null } = {}) {
  let z = [...z0];
  let { f, jac } = await probe(decodeRows, z);
  let r = f.map((v, p) => v - target[p]);
  let cost = sq(r);
  let lam = 1e-3;
  let calls = 1;
  for (let it = 0; it < maxIter; it += 1) {
    const d = z.length;
    const grad = jac.map((jk) => jk.reduce((s, v, p) => s + v * r[p], 0));
    const hess = jac.map((ja) => jac.map((jb) => ja.reduce((s, v, p) => s + v * jb[p], 0)));
    const damped = hess.map((row, i) => row.map((v, j) => (i === j ? v + lam * Math.max(v, 1e-9) : v)));
    const step = solve(damped, grad.map((g) => -g));
    if (!step) break;
    const trial = z.map((v, i) => v + step[i]);
    const next = await probe(decodeRows, trial);
    calls += 1;
    const rt = next.f.map((v, p) => v - target[p]);
    const costT = sq(rt);
    if (Number.isFinite(costT) && costT < cost) {
      const small = cost - costT <= ftol * Math.max(cost, 1e-30);
      z = trial; f = next.f; jac = next.jac; r = rt; cost = costT;
      lam = Math.max(lam / 3, 1e-9);
      if (small) break;
    } else {
      lam *= 4;
      if (lam > 1e8) break;
    }
    if (d === 0) break;
  }
  return { z, xHat: f, residual: Math.sqrt(cost), calls, band: band(jac, f, cost, emulatorRms) };
}

// The fit's ±2σ band of the true curve, as the Python runtime draws it with σ estimated: Σ = σ̂²(JᵀJ)⁻¹ with
// σ̂² = RSS / (P − d), band = x̂ ± 2·sqrt(diag(J Σ Jᵀ) + σ_emu²), σ_emu the model's own error when recorded.
function band(jac, f, cost, emulatorRms) {
  const d = jac.length; const p = f.length;
  const s2 = cost / Math.max(p - d, 1);
  const hess = jac.map((ja) => jac.map((jb) => ja.reduce((s, v, i) => s + v * jb[i], 0)));
  const cols = Array.from({ length: d }, (_, k) => solve(hess, hess.map((_, i) => (i === k ? 1 : 0))));
  if (cols.some((c) => !c)) return null; // singular: no finite band, as in Python
  const half = f.map((_, i) => {
    let v = 0;
    for (let a = 0; a < d; a += 1) for (let b = 0; b < d; b += 1) v += jac[a][i] * s2 * cols[b][a] * jac[b][i];
    const e = emulatorRms ? emulatorRms[i] : 0;
    return 2 * Math.sqrt(Math.max(v, 0) + e * e);
  });
  return [f.map((v, i) => v - half[i]), f.map((v, i) => v + half[i])];
}
