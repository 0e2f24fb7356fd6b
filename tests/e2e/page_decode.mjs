// Load the explorer from a URL in headless Chromium, decode codes through the page, report what happened.
//   node page_decode.mjs PLAYWRIGHT_DIR INPUT.json OUTPUT.json      INPUT: {url, z: [[..]]}
// OUTPUT: {ready, status, backend, decoded, params, thetaShown, facts, pageErrors, consoleErrors, requests}, and with
// INPUT theta: [[..]] also emulated (the page's curves of those rows), slid (the plotted curve and z after moving the
// first parameter's slider to theta[0][0]) and a screenshot at INPUT.screenshot

import fs from 'node:fs';
import { launch } from './headless.mjs';

const { browser, input, outputFile } = await launch();
const out = { pageErrors: [], consoleErrors: [], requests: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 760 } });
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
  if (input.theta) {
    out.emulated = await page.evaluate((t) => window.curvae.emulate(t), input.theta);
    const first = input.theta[0];
    await page.locator('#theta-slider-0').fill(String(first[0])); // the slider itself: fires 'input'
    await page.waitForTimeout(200);
    out.slid = await page.evaluate(() => ({ z: window.curvae.state.z, curve: window.curvae.state.curve,
      theta: window.curvae.state.theta }));
    out.outOfRange = await page.evaluate(async (t) => {
      try { await window.curvae.emulate(t); return null; } catch (err) { return err.message; }
    }, [[99, 1]]);
    if (input.screenshot) { // a clean view: a few prior samples behind the emulated curve
      await page.click('#sample-btn');
      await page.waitForTimeout(300);
      await page.screenshot({ path: input.screenshot, fullPage: true });
    }
  }
} finally {
  await browser.close();
}
fs.writeFileSync(outputFile, JSON.stringify(out));
