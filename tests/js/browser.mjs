// The browser the web UI tests drive: Debian's Chromium (installed by
// .ci/run) through playwright-core, headless, never downloaded. Shared by the
// scripts under tests/js/ that test pages; each prints JSON lines that the
// Rust test reads (tests/src/node.rs).

import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(import.meta.url);

/** Chromium, headless; `CHROMIUM` overrides the path. */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

/**
 * Screenshots named in the order taken, in `dir` (the test passes one under
 * target/, so they sit next to the test output).
 */
export function screenshots(dir) {
  mkdirSync(dir, { recursive: true });
  let n = 0;
  return async (page, name) => {
    n += 1;
    const file = join(dir, `${String(n).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  };
}

/**
 * The serious and critical accessibility violations axe-core finds on the
 * page as it is now: `[{ id, impact, help, nodes: [selector...] }]`.
 */
export async function axeViolations(page) {
  const source = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  await page.addScriptTag({ content: source });
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ['violations'] }),
  );
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => n.target.join(' ')),
    }));
}

/** One JSON line on stdout: a thing the script saw. */
export function report(thing) {
  process.stdout.write(`${JSON.stringify(thing)}\n`);
}
