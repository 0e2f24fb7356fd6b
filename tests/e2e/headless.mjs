// The shared start of the browser drivers: arguments, input, and Debian's Chromium through playwright-core.
//   const { browser, input, outputFile } = await launch();   (argv: PLAYWRIGHT_DIR INPUT.json OUTPUT.json)
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

export async function launch() {
  const [pwDir, inputFile, outputFile] = process.argv.slice(2);
  const require = createRequire(path.resolve(pwDir, 'package.json'));
  const { chromium } = require('playwright-core');
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  return { browser, input: JSON.parse(fs.readFileSync(inputFile, 'utf8')), outputFile };
}
