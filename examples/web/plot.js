// Minimal canvas plots: curves over the grid, and the latent pad.

// Round tick positions (1, 2 or 5 times a power of ten) covering [lo, hi], about `count` of them.
export function niceTicks(lo, hi, count = 5) {
  const raw = (hi - lo) / Math.max(count - 1, 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const r = raw / mag;
  const step = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag; // the round step nearest the raw one
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * step; t += step) ticks.push(Math.abs(t) < 1e-12 * step ? 0 : t);
  const digits = Math.max(0, -Math.floor(Math.log10(step)));
  return { ticks, label: (t) => t.toFixed(digits) };
}

export function plotCurves(canvas, grid, series, { yLabel = '' } = {}) {
  const ctx = canvas.getContext('2d');
  const { width: w, height: h } = canvas;
  const m = { l: 48, r: 10, t: 10, b: 28 };
  ctx.clearRect(0, 0, w, h);
  const ys = series.flatMap((s) => (s.band ? [...s.band[0], ...s.band[1]] : s.y).filter(Number.isFinite));
  if (ys.length === 0) return;
  let lo = Math.min(...ys); let hi = Math.max(...ys);
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const pad = 0.05 * (hi - lo); lo -= pad; hi += pad;
  const x0 = grid[0]; const x1 = grid[grid.length - 1];
  const px = (x) => m.l + ((x - x0) / (x1 - x0)) * (w - m.l - m.r);
  const py = (y) => h - m.b - ((y - lo) / (hi - lo)) * (h - m.t - m.b);
  ctx.strokeStyle = '#888'; ctx.fillStyle = '#444'; ctx.font = '11px sans-serif'; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(m.l, m.t); ctx.lineTo(m.l, h - m.b); ctx.lineTo(w - m.r, h - m.b); ctx.stroke();
  const xt = niceTicks(x0, x1); const yt = niceTicks(lo, hi);
  xt.ticks.forEach((x) => ctx.fillText(xt.label(x), px(x) - 12, h - m.b + 14));
  yt.ticks.forEach((y) => ctx.fillText(yt.label(y), 2, py(y) + 4));
  ctx.fillText(yLabel, m.l + 6, m.t + 10);
  for (const s of series) {
    if (s.band) { // a filled band between s.band[0] (low) and s.band[1] (high)
      ctx.fillStyle = s.color; ctx.globalAlpha = 0.25; ctx.beginPath();
      grid.forEach((x, i) => (i ? ctx.lineTo(px(x), py(s.band[1][i])) : ctx.moveTo(px(x), py(s.band[1][i]))));
      for (let i = grid.length - 1; i >= 0; i -= 1) ctx.lineTo(px(grid[i]), py(s.band[0][i]));
      ctx.closePath(); ctx.fill(); ctx.globalAlpha = 1;
      continue;
    }
    ctx.strokeStyle = s.color; ctx.fillStyle = s.color; ctx.lineWidth = s.width || 1.5;
    if (s.dots) {
      s.y.forEach((y, i) => { if (Number.isFinite(y)) ctx.fillRect(px(grid[i]) - 1.5, py(y) - 1.5, 3, 3); });
      continue;
    }
    ctx.beginPath();
    let pen = false;
    s.y.forEach((y, i) => {
      if (!Number.isFinite(y)) { pen = false; return; }
      if (pen) ctx.lineTo(px(grid[i]), py(y)); else ctx.moveTo(px(grid[i]), py(y));
      pen = true;
    });
    ctx.stroke();
  }
}

export const PAD_SPAN = 3;

export function padToZ(canvas, clientX, clientY) {
  const r = canvas.getBoundingClientRect();
  const u = (clientX - r.left) / r.width; const v = (clientY - r.top) / r.height;
  return [(2 * u - 1) * PAD_SPAN, (1 - 2 * v) * PAD_SPAN];
}

export function drawPad(canvas, z, target) {
  const ctx = canvas.getContext('2d');
  const { width: w, height: h } = canvas;
  const toPx = ([a, b]) => [((a / PAD_SPAN + 1) / 2) * w, ((1 - b / PAD_SPAN) / 2) * h];
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = '#ccc';
  ctx.beginPath(); ctx.moveTo(w / 2, 0); ctx.lineTo(w / 2, h); ctx.moveTo(0, h / 2); ctx.lineTo(w, h / 2); ctx.stroke();
  for (const k of [1, 2]) {
    ctx.beginPath(); ctx.arc(w / 2, h / 2, (k / PAD_SPAN) * (w / 2), 0, 2 * Math.PI); ctx.stroke();
  }
  if (target) {
    const [tx, ty] = toPx(target);
    ctx.strokeStyle = '#d62728'; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(tx - 6, ty - 6); ctx.lineTo(tx + 6, ty + 6); ctx.moveTo(tx + 6, ty - 6); ctx.lineTo(tx - 6, ty + 6); ctx.stroke();
    ctx.lineWidth = 1;
  }
  const [x, y] = toPx(z);
  ctx.fillStyle = '#1f77b4'; ctx.beginPath(); ctx.arc(x, y, 6, 0, 2 * Math.PI); ctx.fill();
}
