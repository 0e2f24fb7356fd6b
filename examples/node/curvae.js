'use strict';
// Load a curvae bundle (see docs/bundle-format.md) with onnxruntime-node: no Python, no torch.
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const ort = require('onnxruntime-node');

class BundleError extends Error {}

function readManifest(dir) {
  const file = path.join(dir, 'manifest.json');
  if (!fs.existsSync(file)) throw new BundleError(`${dir} has no manifest.json; pass a folder written by curvae export`);
  const m = JSON.parse(fs.readFileSync(file, 'utf8'));
  const major = String(m.format_version || '').split('.')[0];
  if (major !== '1') throw new BundleError(`format_version ${m.format_version} is not supported (this reader reads 1.x)`);
  return m;
}

function graphsOf(m, variant) {
  if (!variant) return m.graphs;
  const v = (m.variants || {})[variant];
  if (!v) throw new BundleError(`variant ${variant} is not in this bundle`);
  return { encoder: v.encoder, decoder: v.decoder };
}

function verifiedBytes(dir, info) {
  if (path.basename(info.file) !== info.file) throw new BundleError(`${info.file} must be a plain file name`);
  const data = fs.readFileSync(path.join(dir, info.file));
  const digest = crypto.createHash('sha256').update(data).digest('hex');
  if (digest !== info.sha256) throw new BundleError(`${info.file} has sha256 ${digest.slice(0, 12)} but the manifest says ${info.sha256.slice(0, 12)}; re-export the bundle`);
  return data;
}

function expectedFiles(m) {
  const names = new Set(['manifest.json', m.graphs.encoder.file, m.graphs.decoder.file]);
  for (const v of Object.values(m.variants || {})) { names.add(v.encoder.file); names.add(v.decoder.file); }
  return names;
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
  const manifest = readManifest(dir);
  const want = expectedFiles(manifest);
  const have = new Set(fs.readdirSync(dir));
  const missing = [...want].filter((f) => !have.has(f));
  const extra = [...have].filter((f) => !want.has(f));
  if (missing.length) throw new BundleError(`bundle is missing ${missing.join(', ')}`);
  if (extra.length) throw new BundleError(`bundle has unexpected files ${extra.join(', ')}`);
  const g = graphsOf(manifest, variant);
  const options = { executionProviders };
  const encoder = await ort.InferenceSession.create(verifiedBytes(dir, g.encoder), options);
  const decoder = await ort.InferenceSession.create(verifiedBytes(dir, g.decoder), options);
  const { n_points: nPoints, latent_dim: latentDim } = manifest;
  return {
    manifest,
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

module.exports = { BundleError, latentGrid, loadBundle };
