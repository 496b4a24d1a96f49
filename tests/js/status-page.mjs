// The public status page and a badge in Debian's Chromium, without a token
// (tests/tests/web_status.rs runs it; the bench's paint times are fcp.mjs').
//
//   node status-page.mjs test <base> <tenant> <entity> <screenshot dir>
//     the page at 360 and 1,440 px (status, banner, sideways overflow, what
//     Tab focuses first, axe-core's serious violations, a screenshot each),
//     then the entity's health badge, then reloads the page every half
//     second until the banner leaves HEALTHY (the test makes an outage after
//     "waiting"); one JSON line per step.

import { launch, screenshots, axeViolations, report } from './browser.mjs';

const [mode, base, tenant, ...rest] = process.argv.slice(2);
const pageUrl = `${base}/status/${encodeURIComponent(tenant)}`;
const browser = await launch();

async function bannerOf(page) {
  const banner = page.locator('[data-testid=banner]');
  return { banner: await banner.getAttribute('data-status'), text: (await banner.innerText()).trim() };
}

async function test(entity, dir) {
  const shot = screenshots(dir);
  for (const width of [360, 1440]) {
    const context = await browser.newContext({ viewport: { width, height: 900 } });
    const page = await context.newPage();
    const response = await page.goto(pageUrl);
    const { banner } = await bannerOf(page);
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth > document.documentElement.clientWidth,
    );
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => document.activeElement?.textContent?.trim() ?? null);
    await shot(page, `status-${width}px`);
    const violations = await axeViolations(page);
    report({ event: 'page', width, status: response.status(), banner, overflow, focused, violations });
    await context.close();
  }
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const badgeUrl = `${base}/badge/${encodeURIComponent(entity)}/health.svg`;
  const response = await context.request.get(badgeUrl);
  // Shown as a README shows it: an image in a page (a bare SVG document
  // cannot be screenshot whole).
  const badge = await context.newPage();
  await badge.setContent(`<!doctype html><title>badge</title><img alt="badge" src="${badgeUrl}">`);
  const drawn = await badge
    .locator('img')
    .evaluate((img) => (img.complete ? img.naturalWidth : 0));
  await shot(badge, 'badge');
  report({
    event: 'badge',
    status: response.status(),
    type: response.headers()['content-type'],
    width: drawn,
  });
  await badge.close();

  const page = await context.newPage();
  await page.goto(pageUrl);
  report({ event: 'waiting' });
  const deadline = Date.now() + 60_000;
  let seen = await bannerOf(page);
  while (seen.banner === 'HEALTHY' && Date.now() < deadline) {
    await page.waitForTimeout(500);
    await page.reload();
    seen = await bannerOf(page);
  }
  await context.close();
  // A fresh page for the picture: one reloaded many times cannot always be
  // captured whole.
  const after = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const outage = await after.newPage();
  await outage.goto(pageUrl);
  const overflow = await outage.evaluate(
    () => document.documentElement.scrollWidth > document.documentElement.clientWidth,
  );
  await shot(outage, 'outage');
  report({ event: 'outage', ...seen, overflow });
  await after.close();
}

try {
  if (mode === 'test') await test(rest[0], rest[1]);
  else throw new Error(`unknown mode ${mode}: test`);
} catch (e) {
  report({ event: 'error', message: String(e?.stack ?? e) });
  process.exitCode = 1;
} finally {
  await browser.close();
}
