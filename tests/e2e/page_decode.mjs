// Load the explorer from a URL in headless Chromium, decode codes through the page, report what happened.
//   node page_decode.mjs PLAYWRIGHT_DIR INPUT.json OUTPUT.json      INPUT: {url, z: [[..]]}
// OUTPUT: {ready, status, backend, decoded, pageErrors, consoleErrors, requests}
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const [pwDir, inputFile, outputFile] = process.argv.slice(2);
const require = createRequire(path.resolve(pwDir, 'package.json'));
const { chromium } = require('playwright-core');
const input = JSON.parse(fs.readFileSync(inputFile, 'utf8'));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
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
} finally {
  await browser.close();
}
fs.writeFileSync(outputFile, JSON.stringify(out));
