// Drive the curvae explorer in headless Chromium (playwright-core, the system's browser) and print JSON results.
//   node browser_driver.mjs PLAYWRIGHT_DIR INPUT.json OUTPUT.json
// INPUT: {url, tamperedUrl, screenshot, z: [[..]], curves: [[..]], eps: [[..]], target: [..]}
import fs from 'node:fs';
import { launch } from './headless.mjs';

const { browser, input, outputFile } = await launch();
const out = {};
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const consoleErrors = [];
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(input.url);
  out.ready = await page.evaluate(() => window.curvae.ready);
  out.status = await page.textContent('#status');
  out.backend = await page.textContent('#backend');
  out.decoded = await page.evaluate((z) => window.curvae.decode(z), input.z);
  out.encoded = await page.evaluate(([c, e]) => window.curvae.encode(c, e), [input.curves, input.eps]);

  // Drag across the pad: z and the plotted curve follow the pointer.
  out.zBefore = await page.evaluate(() => window.curvae.state.z);
  out.curveBefore = await page.evaluate(() => window.curvae.state.curve);
  const box = await page.locator('#pad').boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.75, box.y + box.height * 0.3, { steps: 8 });
  await page.mouse.up();
  await page.waitForFunction(() => window.curvae.state.z[0] > 1);
  await page.waitForTimeout(200);
  out.zAfter = await page.evaluate(() => window.curvae.state.z);
  out.curveAfter = await page.evaluate(() => window.curvae.state.curve);
  out.zShown = await page.textContent('#z-value');

  // Paste a target and fit it through the page's own button.
  await page.fill('#csv', input.target.join(', '));
  await page.click('#fit-btn');
  await page.waitForFunction(() => document.getElementById('fit-result').textContent.includes('residual'));
  out.fit = await page.evaluate(() => ({ z: window.curvae.state.fit.z, residual: window.curvae.state.fit.residual }));
  out.fitText = await page.textContent('#fit-result');
  out.fitBand = await page.evaluate(() => window.curvae.state.fit.band);
  out.timingText = await page.textContent('#timing');
  out.ticks = await page.evaluate(async () => {
    const { niceTicks } = await import('/plot.js');
    const t = niceTicks(-11.1, -1.61);
    return t.ticks.map(t.label);
  });

  // Wrong input gets a message, not a blank page.
  await page.fill('#csv', '1, 2, 3');
  await page.click('#fit-btn');
  await page.waitForSelector('#error', { state: 'visible' });
  out.shortCsvError = await page.textContent('#error');
  await page.fill('#csv', input.target.slice(0, -1).concat(['abc']).join(', '));
  await page.click('#fit-btn');
  await page.waitForFunction(() => document.getElementById('error').textContent.includes('abc'));
  out.badCsvError = await page.textContent('#error');

  // Decode time per call in the page (one row, best of a loop).
  out.decodeMsPerCall = await page.evaluate(async () => {
    const z = [[0.3, -0.2]];
    for (let i = 0; i < 20; i += 1) await window.curvae.decode(z);
    const t0 = performance.now();
    for (let i = 0; i < 300; i += 1) await window.curvae.decode(z);
    return (performance.now() - t0) / 300;
  });

  // Back to a clean view for the screenshot: a few prior samples and the fitted example.
  await page.click('#clear-btn');
  await page.click('#sample-btn');
  await page.fill('#csv', input.target.join(', '));
  await page.click('#fit-btn');
  await page.waitForFunction(() => window.curvae.state.fit !== null);
  await page.evaluate(() => { document.getElementById('error').style.display = 'none'; });
  await page.screenshot({ path: input.screenshot, fullPage: true });
  out.pageErrors = consoleErrors;

  const bad = await browser.newPage();
  await bad.goto(input.tamperedUrl);
  out.tamperedReady = await bad.evaluate(() => window.curvae.ready);
  out.tamperedError = await bad.textContent('#error');
  out.tamperedStatus = await bad.textContent('#status');
} finally {
  await browser.close();
}
fs.writeFileSync(outputFile, JSON.stringify(out));
