// The curvae explorer: load a bundle over HTTP, check it, and explore, sample and fit in the browser.
import * as ort from '/ort/ort.min.mjs';
import { BundleError, HEAD_MAX_BYTES, MAX_JSON_BYTES, graphByteCap, parseManifest, verifyGraph } from '/shared/curvae-bundle.mjs';
import { parseCurve } from './csv.js';
import { exampleCurves, isBuiltIn } from './families.js';
import { fitLatent } from './lm.js';
import { PAD_SPAN, drawPad, padToZ, plotCurves } from './plot.js';

ort.env.wasm.wasmPaths = '/ort/'; // absolute: the .wasm files come from node_modules, served locally, never a CDN
ort.env.wasm.numThreads = 1;

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(window.location.search);
const BUNDLE = (params.get('bundle') || '/bundle/').replace(/\/?$/, '/');
const state = { manifest: null, enc: null, dec: null, head: null, emu: null, backend: null, z: null, curve: null,
  theta: null, samples: [], target: null, fit: null, decodeMs: [] };

function fail(err) {
  const box = $('error');
  box.textContent = `Error: ${err.message}`;
  box.style.display = 'block';
  $('status').textContent = 'not running';
}

async function fetchBounded(url, maxBytes) {
  const res = await fetch(url, { cache: 'no-store' });
  if (!res.ok) throw new BundleError(`${url} could not be fetched (HTTP ${res.status}); is the file in the bundle?`);
  const declared = Number(res.headers.get('content-length'));
  if (declared > maxBytes) throw new BundleError(`${url} is ${declared} bytes, over the ${maxBytes}-byte cap`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (bytes.byteLength > maxBytes) throw new BundleError(`${url} is ${bytes.byteLength} bytes, over the ${maxBytes}-byte cap`);
  return bytes;
}

async function createSession(bytes, backend) {
  return ort.InferenceSession.create(bytes, { executionProviders: [backend], graphOptimizationLevel: 'all' });
}

async function load() {
  const text = new TextDecoder().decode(await fetchBounded(`${BUNDLE}manifest.json`, MAX_JSON_BYTES));
  const m = parseManifest(text);
  const cap = graphByteCap(m);
  const [encBytes, decBytes] = await Promise.all([m.graphs.encoder, m.graphs.decoder].map(
    async (info) => verifyGraph(info, await fetchBounded(BUNDLE + info.file, cap))));
  const wanted = params.get('backend') || (navigator.gpu ? 'webgpu' : 'wasm');
  let backend = wanted;
  try {
    state.dec = await createSession(decBytes, backend);
    state.enc = await createSession(encBytes, backend);
  } catch (err) {
    if (backend === 'wasm') throw err;
    backend = 'wasm'; // WebGPU offered but not usable here: the CPU backend runs everything
    state.dec = await createSession(decBytes, backend);
    state.enc = await createSession(encBytes, backend);
  }
  if (m.params) { // the optional parameter head: z -> the curve's parameters, checked like the other graphs
    const headBytes = await verifyGraph(m.params.graph, await fetchBounded(BUNDLE + m.params.graph.file, HEAD_MAX_BYTES));
    state.head = await createSession(headBytes, 'wasm');
  }
  if (m.emulator) { // the optional emulator: theta -> (curve, z); it holds a copy of the decoder
    const emuBytes = await verifyGraph(m.emulator.graph, await fetchBounded(BUNDLE + m.emulator.graph.file, cap + HEAD_MAX_BYTES));
    state.emu = await createSession(emuBytes, 'wasm');
  }
  state.manifest = m;
  state.backend = backend;
}

// The parameters of each code's curve, by params.onnx; null when the bundle has no parameter head.
async function paramsOf(rows) {
  if (!state.head) return null;
  const d = state.manifest.latent_dim; const k = state.manifest.params.names.length;
  const data = new Float32Array(rows.length * d);
  rows.forEach((row, r) => row.forEach((v, c) => { data[r * d + c] = v; }));
  const out = await state.head.run({ z: new ort.Tensor('float32', data, [rows.length, d]) });
  return rows.map((_, r) => Array.from(out.theta.data.subarray(r * k, (r + 1) * k)));
}

// The curves and codes of parameter rows, by emulator.onnx; rows outside the training range are refused.
async function emulateRows(rows) {
  if (!state.emu) throw new BundleError('this bundle has no emulator (emulator.onnx); export it from curves whose parameters are known');
  const e = state.manifest.emulator; const k = e.names.length; const p = state.manifest.n_points; const d = state.manifest.latent_dim;
  const data = new Float32Array(rows.length * k);
  rows.forEach((row, r) => row.forEach((v, j) => {
    if (!(v >= e.low[j] && v <= e.high[j])) throw new RangeError(`${e.names[j]} = ${v} is outside the training range [${e.low[j]}, ${e.high[j]}]`);
    data[r * k + j] = v;
  }));
  const out = await state.emu.run({ theta: new ort.Tensor('float32', data, [rows.length, k]) });
  return rows.map((_, r) => ({ curve: Array.from(out.x_hat.data.subarray(r * p, (r + 1) * p)),
    z: Array.from(out.z.data.subarray(r * d, (r + 1) * d)) }));
}

async function setTheta(theta) {
  const [row] = await emulateRows([theta]);
  state.z = row.z; state.curve = row.curve; state.theta = theta;
  redraw();
}

const showTheta = (theta) => state.manifest.params.names.map((n, i) => `${n} ${theta[i].toPrecision(4)}`).join(', ');

async function decodeRows(rows) {
  const d = state.manifest.latent_dim; const p = state.manifest.n_points;
  const data = new Float32Array(rows.length * d);
  rows.forEach((row, r) => row.forEach((v, c) => { data[r * d + c] = v; }));
  const t0 = performance.now();
  const out = await state.dec.run({ z: new ort.Tensor('float32', data, [rows.length, d]) });
  state.decodeMs.push(performance.now() - t0);
  if (state.decodeMs.length > 50) state.decodeMs.shift();
  const x = out.x_hat.data;
  return rows.map((_, r) => Array.from(x.subarray(r * p, (r + 1) * p)));
}

async function encodeRows(curves, eps) {
  const d = state.manifest.latent_dim; const p = state.manifest.n_points;
  const x = new Float32Array(curves.length * p); const e = new Float32Array(curves.length * d);
  curves.forEach((c, r) => c.forEach((v, k) => { x[r * p + k] = v; }));
  if (eps) eps.forEach((row, r) => row.forEach((v, k) => { e[r * d + k] = v; }));
  const out = await state.enc.run({ x: new ort.Tensor('float32', x, [curves.length, p]),
    eps: new ort.Tensor('float32', e, [curves.length, d]) });
  const rows = (t) => curves.map((_, r) => Array.from(t.data.subarray(r * d, (r + 1) * d)));
  return { z: rows(out.z), mu: rows(out.mu), logvar: rows(out.logvar) };
}

const asShown = (curve) => ($('as-pdf').checked ? curve.map(Math.exp) : curve);

function redraw() {
  const m = state.manifest;
  const series = state.samples.map((y) => ({ y: asShown(y), color: 'rgba(120,120,120,0.45)', width: 1 }));
  if (state.target) series.push({ y: asShown(state.target), color: '#000', dots: true });
  if (state.fit && state.fit.band) {
    series.push({ band: state.fit.band.map(asShown), color: 'rgba(214,39,40,0.6)' });
  }
  if (state.fit) series.push({ y: asShown(state.fit.xHat), color: '#d62728', width: 2 });
  if (state.curve) series.push({ y: asShown(state.curve), color: '#1f77b4', width: 2 });
  plotCurves($('curve'), m.grid, series, { yLabel: $('as-pdf').checked ? 'PDF' : 'log-PDF' });
  $('z-value').textContent = state.z.map((v) => v.toFixed(3)).join(', ');
  if (state.theta) $('theta-value').textContent = showTheta(state.theta);
  if (state.theta && state.emu) state.theta.forEach((v, j) => { $(`theta-slider-${j}`).value = v; });
  if (m.latent_dim === 2) drawPad($('pad'), state.z, state.fit && state.fit.z);
  else state.z.forEach((v, k) => { $(`slider-${k}`).value = v; });
  const times = state.decodeMs;
  // The browser's clock is coarse (tens of µs or more): a mean over the last calls says more than one call.
  $('timing').textContent = times.length === 0 ? '–'
    : `${Math.round((1000 * times.reduce((a, b) => a + b, 0)) / times.length)} µs (mean of the last ${times.length} calls)`;
}

let pending = null;
async function setZ(z) {
  state.z = z;
  if (pending) return; // one decode in flight at a time; the latest z wins
  pending = (async () => {
    let done;
    do {
      done = state.z;
      [state.curve] = await decodeRows([done]);
      const theta = await paramsOf([done]);
      state.theta = theta && theta[0];
    } while (done !== state.z);
    pending = null;
    redraw();
  })();
  await pending;
}

function rng(seed) { // mulberry32 + Box-Muller: a seeded N(0, 1) stream
  let a = seed >>> 0;
  const u = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

async function sample() {
  const n = Math.max(1, Math.min(500, Number($('sample-n').value) || 1));
  const g = rng(Number($('sample-seed').value) || 0);
  const zs = Array.from({ length: n }, () => Array.from({ length: state.manifest.latent_dim }, g));
  state.samples = await decodeRows(zs);
  redraw();
}

async function fitTarget(values) {
  const target = parseCurve(Array.isArray(values) ? values.join(',') : values, state.manifest.n_points);
  const { mu } = await encodeRows([target]);
  const rec = state.manifest.fit_residuals;
  const emulatorRms = rec && Array.isArray(rec.point_rms) && rec.point_rms.length === target.length ? rec.point_rms : null;
  const fit = await fitLatent(decodeRows, target, mu[0], { emulatorRms });
  const theta = await paramsOf([fit.z]);
  fit.theta = theta && theta[0];
  state.target = target; state.fit = fit;
  await setZ(fit.z);
  $('fit-result').textContent = `z = ${fit.z.map((v) => v.toFixed(4)).join(', ')}${fit.theta ? ` · ${showTheta(fit.theta)}` : ''} · residual ${fit.residual.toPrecision(4)} `
    + `(L2 over ${target.length} points) · ${fit.calls} decoder calls`
    + (fit.band ? ` · shaded: ±2σ band of the true curve${emulatorRms ? ' (z and the model\'s own error)' : ' (z only)'}` : '');
  return fit;
}

function showFacts() {
  const m = state.manifest;
  const rows = [['family', m.family && m.family.name], ['points / latent size', `${m.n_points} / ${m.latent_dim}`],
    ['grid', `${m.grid[0]} … ${m.grid[m.grid.length - 1]}`], ['format', m.format_version], ['run', m.run_id],
    ['opset / IR', `${m.opset} / ${m.ir_version}`], ['parity max abs', m.parity && Number(m.parity.max_abs).toPrecision(3)],
    ['epochs', m.training && m.training.epochs],
    ['parameters', m.params ? m.params.names.join(', ') : 'none (no parameter head)'],
    ['emulator', m.emulator ? `θ → curve, held-out error ${(100 * m.emulator.error_median / m.emulator.spread).toFixed(2)}% of the spread` : 'none']];
  $('facts').innerHTML = rows.map(([k, v]) => `<tr><th>${k}</th><td>${String(v)}</td></tr>`).join('');
  $('backend').textContent = `onnxruntime-web ${ort.env.versions ? ort.env.versions.web : ''} · ${state.backend}`;
}

function buildControls() {
  const m = state.manifest;
  if (m.latent_dim === 2) {
    const pad = $('pad');
    pad.style.display = 'block';
    let down = false;
    pad.addEventListener('pointerdown', (e) => { down = true; pad.setPointerCapture(e.pointerId); setZ(padToZ(pad, e.clientX, e.clientY)); });
    pad.addEventListener('pointermove', (e) => { if (down) setZ(padToZ(pad, e.clientX, e.clientY)); });
    pad.addEventListener('pointerup', () => { down = false; });
  } else {
    $('latent-title').textContent = 'latent code z (one slider per dimension)';
    $('sliders').innerHTML = Array.from({ length: m.latent_dim }, (_, k) => `<label>z${k} <input type="range" id="slider-${k}" min="${-PAD_SPAN}" max="${PAD_SPAN}" step="0.01" value="0"></label>`).join('');
    for (let k = 0; k < m.latent_dim; k += 1) {
      $(`slider-${k}`).addEventListener('input', () => setZ(state.z.map((v, j) => (j === k ? Number($(`slider-${k}`).value) : v))));
    }
  }
  if (state.emu) { // one slider per parameter over its training range: θ → curve by the emulator
    const e = m.emulator;
    $('theta-title').style.display = 'block';
    $('theta-sliders').innerHTML = e.names.map((n, j) => `<label>${n} <input type="range" id="theta-slider-${j}" min="${e.low[j]}" max="${e.high[j]}" step="${(e.high[j] - e.low[j]) / 500}" value="${(e.low[j] + e.high[j]) / 2}"></label>`).join('');
    e.names.forEach((_, j) => {
      $(`theta-slider-${j}`).addEventListener('input', () => setTheta(e.names.map((__, i) => Number($(`theta-slider-${i}`).value))));
    });
  }
  const builtIn = isBuiltIn(m.family);
  $('as-pdf').disabled = !builtIn;
  $('as-pdf').addEventListener('change', redraw);
  const examples = exampleCurves(m.family, m.grid);
  $('examples').innerHTML += examples.map((e, i) => `<option value="${i}">${e.label}</option>`).join('');
  $('examples').addEventListener('change', () => {
    const e = examples[Number($('examples').value)];
    if (e) $('csv').value = e.curve.map((v) => v.toPrecision(7)).join(', ');
  });
  $('file').addEventListener('change', async () => { const f = $('file').files[0]; if (f) $('csv').value = await f.text(); });
  const guard = (fn) => async () => {
    $('error').style.display = 'none';
    try { await fn(); } catch (err) { fail(err); $('status').textContent = 'ready'; }
  };
  $('fit-btn').addEventListener('click', guard(() => fitTarget($('csv').value)));
  $('sample-btn').addEventListener('click', guard(sample));
  $('clear-btn').addEventListener('click', () => { state.samples = []; state.target = null; state.fit = null; redraw(); });
  for (const id of ['fit-btn', 'sample-btn', 'clear-btn']) $(id).disabled = false;
}

window.curvae = {
  state,
  decode: decodeRows,
  encode: encodeRows,
  params: paramsOf,
  emulate: emulateRows,
  setTheta,
  fit: fitTarget,
  ready: (async () => {
    try {
      await load();
    } catch (err) {
      fail(err);
      return false;
    }
    showFacts();
    buildControls();
    const zero = new Array(state.manifest.latent_dim).fill(0);
    for (let i = 0; i < 3; i += 1) await decodeRows([zero]); // warm-up calls: the shown time is a steady one
    state.decodeMs = [];
    await setZ(zero);
    $('status').textContent = `ready: ${BUNDLE}`;
    return true;
  })(),
};
