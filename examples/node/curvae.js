'use strict';
// Load a curvae bundle (see docs/bundle-format.md) with onnxruntime-node: no Python, no torch.
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

// The rules shared with the browser explorer: ../shared/curvae-bundle.mjs (an ES module, loaded once).
let rules;
async function bundleRules() {
  rules = rules || await import(path.join(__dirname, '..', 'shared', 'curvae-bundle.mjs'));
  return rules;
}

// Read a regular file of at most maxBytes from dir; a symlink is followed only when it stays inside dir.
function readBounded(dir, name, maxBytes, BundleError) {
  const file = path.join(dir, name);
  let st;
  try { st = fs.lstatSync(file); } catch (e) { throw new BundleError(`${file} is missing; re-export the bundle`); }
  let target = file;
  if (st.isSymbolicLink()) {
    const real = fs.realpathSync(file);
    const root = fs.realpathSync(dir) + path.sep;
    if (!real.startsWith(root)) throw new BundleError(`${file} is a symlink to '${real}', outside its folder; re-export the bundle`);
    target = real;
  }
  const fd = fs.openSync(target, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK || 0));
  try {
    const info = fs.fstatSync(fd);
    if (!info.isFile()) throw new BundleError(`${file} is not a regular file; re-export the bundle`);
    if (info.size > maxBytes) throw new BundleError(`${file} is ${info.size} bytes, over the ${maxBytes}-byte cap for this file; re-export the bundle`);
    const buf = Buffer.alloc(info.size);
    let got = 0;
    while (got < info.size) {
      const n = fs.readSync(fd, buf, got, info.size - got, null);
      if (n === 0) break;
      got += n;
    }
    if (got !== info.size || fs.readSync(fd, Buffer.alloc(1), 0, 1, null) !== 0) throw new BundleError(`${file} changed size while it was read`);
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

function rowsToTensor(rows, width, what) {
  if (!Array.isArray(rows) || rows.length === 0) throw new RangeError(`${what} must be a non-empty array of rows`);
  const data = new Float32Array(rows.length * width);
  rows.forEach((row, r) => {
    if (!Array.isArray(row) || row.length !== width) throw new RangeError(`${what} row ${r} has ${row && row.length} values; the bundle needs ${width}`);
    row.forEach((v, c) => {
      if (!Number.isFinite(v)) throw new RangeError(`${what}[${r}][${c}] = ${v} is not finite`);
      data[r * width + c] = v;
    });
  });
  return new ort.Tensor('float32', data, [rows.length, width]);
}

function tensorToRows(t) {
  const [n, w] = t.dims;
  return Array.from({ length: n }, (_, r) => Array.from(t.data.subarray(r * w, (r + 1) * w)));
}

async function loadBundle(dir, { variant = null, executionProviders = ['cpu'] } = {}) {
  const { BundleError, HEAD_MAX_BYTES, MAX_JSON_BYTES, expectedFiles, graphByteCap, graphsOf, parseManifest, verifyGraph } = await bundleRules();
  if (!fs.lstatSync(path.join(dir, 'manifest.json'), { throwIfNoEntry: false })) {
    throw new BundleError(`${dir} has no manifest.json; pass a folder written by curvae export`);
  }
  const manifest = parseManifest(readBounded(dir, 'manifest.json', MAX_JSON_BYTES, BundleError).toString('utf8'));
  const want = expectedFiles(manifest);
  const have = new Set(fs.readdirSync(dir));
  const missing = [...want].filter((f) => !have.has(f));
  const extra = [...have].filter((f) => !want.has(f));
  if (missing.length) throw new BundleError(`bundle is missing ${missing.join(', ')}`);
  if (extra.length) throw new BundleError(`bundle has unexpected files ${extra.join(', ')}`);
  const g = graphsOf(manifest, variant);
  const options = { executionProviders };
  const cap = graphByteCap(manifest);
  const read = (info) => verifyGraph(info, readBounded(dir, info.file, cap, BundleError));
  const encoder = await ort.InferenceSession.create(await read(g.encoder), options);
  const decoder = await ort.InferenceSession.create(await read(g.decoder), options);
  const head = manifest.params
    ? await ort.InferenceSession.create(await verifyGraph(manifest.params.graph, readBounded(dir, manifest.params.graph.file, HEAD_MAX_BYTES, BundleError)), options)
    : null;
  // The emulator holds a copy of the decoder: read it under the decoder's cap plus the head's.
  const emulator = manifest.emulator
    ? await ort.InferenceSession.create(await verifyGraph(manifest.emulator.graph, readBounded(dir, manifest.emulator.graph.file, cap + HEAD_MAX_BYTES, BundleError)), options)
    : null;
  const { n_points: nPoints, latent_dim: latentDim } = manifest;
  return {
    manifest,
    // The curve's parameters for each code, in the order of manifest.params.names; null without a parameter head.
    paramNames: manifest.params ? manifest.params.names : null,
    async params(zRows) {
      if (!head) throw new BundleError('this bundle has no parameter head (params.onnx); export it from curves whose parameters are known');
      const out = await head.run({ z: rowsToTensor(zRows, latentDim, 'z') });
      return tensorToRows(out.theta);
    },
    // theta -> curves (and the codes they decode from), parameters in the order of manifest.emulator.names.
    // A value outside the training range is an error unless { extrapolate: true }; then `outside` flags its row.
    emulatorNames: manifest.emulator ? manifest.emulator.names : null,
    async emulate(thetaRows, { extrapolate = false } = {}) {
      if (!emulator) throw new BundleError('this bundle has no emulator (emulator.onnx); export it from curves whose parameters are known');
      const e = manifest.emulator;
      const outside = thetaRows.map((row, r) => row.some((v, j) => {
        const slack = 1e-9 * (e.high[j] - e.low[j]);
        const out = v < e.low[j] - slack || v > e.high[j] + slack;
        if (out && !extrapolate) throw new RangeError(`theta[${r}, ${j}] (${e.names[j]}) = ${v} is outside the training range [${e.low[j]}, ${e.high[j]}]; pass parameters inside it, or { extrapolate: true }`);
        return out;
      }));
      const out = await emulator.run({ theta: rowsToTensor(thetaRows, e.names.length, 'theta') });
      return { curves: tensorToRows(out.x_hat), z: tensorToRows(out.z), outside };
    },
    async decode(zRows) {
      const out = await decoder.run({ z: rowsToTensor(zRows, latentDim, 'z') });
      return tensorToRows(out.x_hat);
    },
    async encode(curveRows, epsRows) {
      const x = rowsToTensor(curveRows, nPoints, 'curves');
      const eps = epsRows ? rowsToTensor(epsRows, latentDim, 'eps') : new ort.Tensor('float32', new Float32Array(curveRows.length * latentDim), [curveRows.length, latentDim]);
      if (eps.dims[0] !== x.dims[0]) throw new RangeError(`eps has ${eps.dims[0]} rows but curves has ${x.dims[0]}`);
      const out = await encoder.run({ x, eps });
      return { z: tensorToRows(out.z), mu: tensorToRows(out.mu), logvar: tensorToRows(out.logvar) };
    },
  };
}

// A lattice of latent codes: `side` points per axis on [-span, span] (2-D), or points along each axis otherwise.
function latentGrid(latentDim, side = 5, span = 2) {
  const axis = Array.from({ length: side }, (_, i) => -span + (2 * span * i) / (side - 1));
  if (latentDim === 2) return axis.flatMap((b) => axis.map((a) => [a, b]));
  return Array.from({ length: latentDim }, (_, k) => axis.map((v) => Array.from({ length: latentDim }, (_, j) => (j === k ? v : 0)))).flat();
}

module.exports = { latentGrid, loadBundle };
