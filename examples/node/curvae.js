'use strict';
// Load a curvae bundle (see docs/bundle-format.md) with onnxruntime-node: no Python, no torch.
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const ort = require('onnxruntime-node');

class BundleError extends Error {}

// Caps and rules shared with the Python runtime (docs/bundle-format.md, "Reading a bundle safely").
const MAX_JSON_BYTES = 8 * 2 ** 20;
const MAX_JSON_DEPTH = 32;
const PROTOBUF_MAX_BYTES = 2 ** 31 - 1;

// Read a regular file of at most maxBytes from dir; a symlink is followed only when it stays inside dir.
function readBounded(dir, name, maxBytes) {
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

// Deepest nesting of [ and { outside strings, found before JSON.parse recurses into it.
function jsonDepth(text) {
  let depth = 0; let max = 0; let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i += 1; else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) { depth += 1; if (depth > max) max = depth; } else if (c === 93 || c === 125) depth -= 1;
  }
  return max;
}

function readManifest(dir) {
  if (!fs.lstatSync(path.join(dir, 'manifest.json'), { throwIfNoEntry: false })) {
    throw new BundleError(`${dir} has no manifest.json; pass a folder written by curvae export`);
  }
  const text = readBounded(dir, 'manifest.json', MAX_JSON_BYTES).toString('utf8');
  const depth = jsonDepth(text);
  if (depth > MAX_JSON_DEPTH) throw new BundleError(`manifest.json nests ${depth} levels deep, over the cap of ${MAX_JSON_DEPTH}; re-export the bundle`);
  let m;
  try { m = JSON.parse(text); } catch (e) { throw new BundleError(`manifest.json is not valid JSON (${e.message}); re-export the bundle`); }
  if (m === null || typeof m !== 'object' || Array.isArray(m)) throw new BundleError('manifest.json is not a JSON object; re-export the bundle');
  const major = String(m.format_version || '').split('.')[0];
  if (major !== '1') throw new BundleError(`format_version ${m.format_version} is not supported (this reader reads 1.x)`);
  checkSemantics(m);
  return m;
}

function checkSemantics(m) {
  const bad = (what) => new BundleError(`manifest: ${what}; re-export the bundle`);
  if (!Number.isInteger(m.n_points) || m.n_points < 2 || m.n_points > 1e6) throw bad(`n_points=${m.n_points} is out of bounds (2..1000000)`);
  if (!Number.isInteger(m.latent_dim) || m.latent_dim < 1 || m.latent_dim > 4096) throw bad(`latent_dim=${m.latent_dim} is out of bounds (1..4096)`);
  if (!Array.isArray(m.grid) || m.grid.length !== m.n_points) throw bad('the grid must hold n_points values');
  m.grid.forEach((x, i) => {
    if (!Number.isFinite(x)) throw bad(`grid[${i}] is not finite`);
    if (i > 0 && !(x > m.grid[i - 1])) throw bad(`grid[${i}] does not increase`);
  });
  if (!m.graphs || !m.graphs.encoder || !m.graphs.decoder) throw bad('graphs.encoder and graphs.decoder are required');
}

// Largest graph read: twice the float32 weights the training config declares, plus 1 MiB; at most 2 GiB.
function graphByteCap(m) {
  const shape = ((m.training || {}).config || {}).model;
  if (!shape || !Number.isInteger(shape.hidden)) return PROTOBUF_MAX_BYTES;
  const h = shape.hidden; const depth = Number.isInteger(shape.depth) ? shape.depth : 1; const p = m.n_points; const d = m.latent_dim;
  const inner = Math.max(depth - 1, 0) * (h * h + h);
  const params = Math.max(p * h + h + inner + 2 * d * (h + 1), d * h + h + inner + p * (h + 1));
  return Math.min(PROTOBUF_MAX_BYTES, 2 * 4 * params + 2 ** 20);
}

function graphsOf(m, variant) {
  if (!variant) return m.graphs;
  const v = (m.variants || {})[variant];
  if (!v) throw new BundleError(`variant ${variant} is not in this bundle`);
  return { encoder: v.encoder, decoder: v.decoder };
}

function verifiedBytes(dir, info, maxBytes) {
  if (typeof info.file !== 'string' || path.basename(info.file) !== info.file) throw new BundleError(`${info.file} must be a plain file name`);
  const data = readBounded(dir, info.file, maxBytes);
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
  const cap = graphByteCap(manifest);
  const encoder = await ort.InferenceSession.create(verifiedBytes(dir, g.encoder, cap), options);
  const decoder = await ort.InferenceSession.create(verifiedBytes(dir, g.decoder, cap), options);
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

module.exports = { BundleError, jsonDepth, latentGrid, loadBundle, readManifest };
