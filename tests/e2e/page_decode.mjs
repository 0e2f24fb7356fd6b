// Load the explorer from a URL in headless Chromium, decode codes through the page, report what happened.
//   node page_decode.mjs PLAYWRIGHT_DIR INPUT.json OUTPUT.json      INPUT: {url, z: [[..]]}
// OUTPUT: {ready, status, backend, decoded, params, thetaShown, facts, pageErrors, consoleErrors, requests}
import fs from 'node:fs';
import { launch } from './headless.mjs';

const { browser, input, outputFile } = await launch();
const out = { pageErrors: [], consoleErrors: [], requests: [] };
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => out.pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') out.consoleErrors.push(m.text()); });
  page.on('response', (r) => out.requests.push([new URL(r.url()).pathname, r.status()]));
  await page.goto(input.url);
  out.ready = await page.evaluate(() => window.curvae.ready);
  out.status = await page.textContent('#status');
  out.backend = await page.textContent('#backend');
  out.decoded = await page.evaluate((z) => window.curvae.decode(z), input.z);
  out.params = await page.evaluate((z) => window.curvae.params(z), input.z);
  out.thetaShown = await page.textContent('#theta-value');
  out.facts = await page.textContent('#facts');
} finally {
  await browser.close();
}
fs.writeFileSync(outputFile, JSON.stringify(out));
