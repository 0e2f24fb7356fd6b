// The bundle rules of docs/bundle-format.md, for JavaScript readers: one module for Node.js and the browser.
// Reading the bytes is the caller's job (fs in Node, fetch in the browser); everything else is here.

export class BundleError extends Error {}

export const MAX_JSON_BYTES = 8 * 2 ** 20;
export const MAX_JSON_DEPTH = 32;
export const PROTOBUF_MAX_BYTES = 2 ** 31 - 1;

// Deepest nesting of [ and { outside strings, found before JSON.parse recurses into it.
export function jsonDepth(text) {
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

// manifest.json text -> the manifest object, or BundleError naming the rule it breaks.
export function parseManifest(text) {
  if (text.length > MAX_JSON_BYTES) throw new BundleError(`manifest.json is ${text.length} bytes, over the ${MAX_JSON_BYTES}-byte cap; re-export the bundle`);
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

export function checkSemantics(m) {
  const bad = (what) => new BundleError(`manifest: ${what}; re-export the bundle`);
  if (!Number.isInteger(m.n_points) || m.n_points < 2 || m.n_points > 1e6) throw bad(`n_points=${m.n_points} is out of bounds (2..1000000)`);
  if (!Number.isInteger(m.latent_dim) || m.latent_dim < 1 || m.latent_dim > 4096) throw bad(`latent_dim=${m.latent_dim} is out of bounds (1..4096)`);
  if (!Array.isArray(m.grid) || m.grid.length !== m.n_points) throw bad('the grid must hold n_points values');
  m.grid.forEach((x, i) => {
    if (!Number.isFinite(x)) throw bad(`grid[${i}] is not finite`);
    if (i > 0 && !(x > m.grid[i - 1])) throw bad(`grid[${i}] does not increase`);
  });
  if (!m.graphs || !m.graphs.encoder || !m.graphs.decoder) throw bad('graphs.encoder and graphs.decoder are required');
  checkParams(m);
  checkEmulator(m);
  const infos = graphInfos(m);
  if (new Set(infos.map((g) => g.file)).size !== infos.length) throw bad('graph files repeat a name');
  for (const g of infos) {
    if (typeof g.file !== 'string' || !/^[^/\\.][^/\\]*\.onnx$/.test(g.file)) throw bad(`graph file ${JSON.stringify(g.file)} must be a plain *.onnx file name`);
    if (typeof g.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(g.sha256)) throw bad(`${g.file} has no 64-digit sha256`);
  }
}

function graphInfos(m) {
  const out = [m.graphs.encoder, m.graphs.decoder];
  for (const v of Object.values(m.variants || {})) out.push(v.encoder, v.decoder);
  if (m.params) out.push(m.params.graph);
  if (m.emulator) out.push(m.emulator.graph);
  return out;
}

// The emulator (format 1.4, optional): emulator.onnx maps theta to (x_hat, z), the decoder inside.
export function checkEmulator(m) {
  const e = m.emulator;
  if (e === undefined || e === null) return;
  const bad = (what) => new BundleError(`manifest: emulator ${what}; re-export the bundle`);
  if (typeof e !== 'object' || !e.graph || typeof e.graph !== 'object') throw bad('must hold a graph');
  const k = Array.isArray(e.names) ? e.names.length : 0;
  if (k < 1 || k > 64 || new Set(e.names).size !== k || !e.names.every((n) => typeof n === 'string' && n.length > 0 && n.length <= 64)) throw bad('names must be 1..64 distinct strings');
  for (const key of ['low', 'high']) if (!Array.isArray(e[key]) || e[key].length !== k || !e[key].every(Number.isFinite)) throw bad(`${key} must hold ${k} finite values`);
  if (!e.low.every((lo, i) => lo < e.high[i])) throw bad('ranges must have low < high');
  if (JSON.stringify(e.graph.inputs) !== '["theta"]' || JSON.stringify(e.graph.outputs) !== '["x_hat","z"]') throw bad('graph I/O must be theta -> x_hat, z');
}

// The parameter head (format 1.3, optional): params.onnx maps z to the curve's parameters theta.
export const HEAD_MAX_BYTES = 16 * 2 ** 20;
export function checkParams(m) {
  const p = m.params;
  if (p === undefined || p === null) return;
  const bad = (what) => new BundleError(`manifest: params ${what}; re-export the bundle`);
  if (typeof p !== 'object' || !p.graph || typeof p.graph !== 'object') throw bad('must hold a graph');
  const k = Array.isArray(p.names) ? p.names.length : 0;
  if (k < 1 || k > 64 || new Set(p.names).size !== k || !p.names.every((n) => typeof n === 'string' && n.length > 0 && n.length <= 64)) throw bad('names must be 1..64 distinct strings');
  for (const key of ['transforms', 'low', 'high', 'error']) if (!Array.isArray(p[key]) || p[key].length !== k) throw bad(`${key} must hold ${k} values`);
  if (!p.transforms.every((t) => t === 'log' || t === 'identity')) throw bad('transforms must each be log or identity');
  if (![...p.low, ...p.high, ...p.error].every(Number.isFinite)) throw bad('ranges and errors must be finite');
  if (JSON.stringify(p.graph.inputs) !== '["z"]' || JSON.stringify(p.graph.outputs) !== '["theta"]') throw bad('graph I/O must be z -> theta');
}

// Every file the bundle folder must hold, and nothing else.
export function expectedFiles(m) {
  return new Set(['manifest.json', ...graphInfos(m).map((g) => g.file)]);
}

export function graphsOf(m, variant) {
  if (!variant) return m.graphs;
  const v = (m.variants || {})[variant];
  if (!v) throw new BundleError(`variant ${variant} is not in this bundle (variants: ${Object.keys(m.variants || {}).join(', ') || 'none'})`);
  return { encoder: v.encoder, decoder: v.decoder };
}

// Largest graph read: twice the float32 weights the training config declares, plus 1 MiB; at most 2 GiB.
export function graphByteCap(m) {
  const shape = ((m.training || {}).config || {}).model;
  if (!shape || !Number.isInteger(shape.hidden)) return PROTOBUF_MAX_BYTES;
  const h = shape.hidden; const depth = Number.isInteger(shape.depth) ? shape.depth : 1; const p = m.n_points; const d = m.latent_dim;
  const inner = Math.max(depth - 1, 0) * (h * h + h);
  const params = Math.max(p * h + h + inner + 2 * d * (h + 1), d * h + h + inner + p * (h + 1));
  return Math.min(PROTOBUF_MAX_BYTES, 2 * 4 * params + 2 ** 20);
}

// sha256 with WebCrypto (global in browsers and in Node.js 19+).
export async function sha256Hex(bytes) {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

// The graph bytes, checked against the manifest's hash; the same bytes go to onnxruntime.
export async function verifyGraph(info, bytes) {
  const digest = await sha256Hex(bytes);
  if (digest !== info.sha256) throw new BundleError(`${info.file} has sha256 ${digest.slice(0, 12)}… but the manifest says ${info.sha256.slice(0, 12)}…; the file is corrupt or was replaced: re-export the bundle`);
  return bytes;
}
