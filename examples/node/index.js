#!/usr/bin/env node
'use strict';
// node index.js BUNDLE NOISE.json OUT.json [--variant fp16]
// NOISE.json: {"curves": [[...n_points...], ...], "eps": [[...latent_dim...], ...]}, and optionally "theta"
//             (parameter rows to emulate)
// OUT.json:   {"grid_z", "grid_x_hat", "z", "mu", "logvar"}, and "param_names", "theta_mu" (the parameters
//             of each curve's mu) when the bundle has a parameter head, and "emulated" (the curves of "theta")
//             when it has an emulator
const fs = require('fs');
const { latentGrid, loadBundle } = require('./curvae');

async function main(argv) {
  const [bundle, noiseFile, outFile, flag, variant] = argv;
  if (!bundle || !noiseFile || !outFile) throw new Error('usage: node index.js BUNDLE NOISE.json OUT.json [--variant NAME]');
  const model = await loadBundle(bundle, { variant: flag === '--variant' ? variant : null });
  const noise = JSON.parse(fs.readFileSync(noiseFile, 'utf8'));
  const gridZ = latentGrid(model.manifest.latent_dim);
  const result = { grid_z: gridZ, grid_x_hat: await model.decode(gridZ), ...(await model.encode(noise.curves, noise.eps)) };
  if (model.paramNames) Object.assign(result, { param_names: model.paramNames, theta_mu: await model.params(result.mu) });
  if (model.emulatorNames && noise.theta) result.emulated = (await model.emulate(noise.theta)).curves;
  fs.writeFileSync(outFile + '.tmp', JSON.stringify(result));
  fs.renameSync(outFile + '.tmp', outFile);
  console.log(`decoded ${gridZ.length} grid codes and encoded ${noise.curves.length} curves with ${model.manifest.family.name} bundle ${model.manifest.run_id}`);
}

main(process.argv.slice(2)).catch((err) => {
  console.error(`Error: ${err.message}`);
  process.exit(1);
});
