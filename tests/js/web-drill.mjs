// A person's way through the web UI in Chromium, against a daemon the Rust
// test (tests/tests/web_ui.rs) started: sign in as an operator, drill from
// the tenants to an asset, watch a flow card turn red without a reload while
// another tab runs the check now, find that action in the audit log as an
// admin, check that a viewer sees no buttons and that another tenant's
// pages are 404s; axe-core at every page, at 1,440 and 360 px.
//
// Usage: node web-drill.mjs BASE SCREENSHOT_DIR
// Prints JSON lines: {event: ...}.

import { axeViolations, launch, report, screenshots } from './browser.mjs';

const [base, dir] = process.argv.slice(2);
const shot = screenshots(dir);
const WIDE = { width: 1440, height: 900 };
const NARROW = { width: 360, height: 740 };
const WAIT = 20000;

const browser = await launch();

async function signIn(token, viewport = WIDE) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  await page.goto(`${base}/`);
  // Keyboard only: the token field has focus; Enter submits.
  await page.waitForSelector('#token');
  await page.keyboard.type(token);
  await page.keyboard.press('Enter');
  await page.waitForURL(`${base}/`);
  return { context, page };
}

/** axe, a screenshot, and whether the page fits its width. */
async function check(page, name) {
  const violations = await axeViolations(page);
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  await shot(page, name);
  report({ event: 'page', name, url: page.url(), violations, overflow });
}

try {
  // Sign-in form itself.
  {
    const context = await browser.newContext({ viewport: WIDE });
    const page = await context.newPage();
    await page.goto(`${base}/`);
    await check(page, 'sign-in');
    await context.close();
  }

  const { page } = await signIn('operator-token');
  await check(page, 'tenants');
  await page.getByRole('link', { name: 'Acme', exact: true }).click();
  await page.waitForSelector('.card');
  await check(page, 'tenant');
  const tenantUrl = page.url();
  await page.getByRole('link', { name: 'Acme documents' }).first().click();
  await page.waitForSelector('h1:has-text("Acme documents")');
  await check(page, 'flow');
  await page.locator('.card h3 a', { hasText: 'Warehouse' }).click();
  await page.waitForSelector('h1:has-text("Warehouse")');
  await check(page, 'system');
  await page.getByRole('link', { name: 'warehouse-docs' }).first().click();
  await page.waitForSelector('button:has-text("Run now")');
  await check(page, 'check');
  const checkUrl = page.url();
  await page.locator('table a', { hasText: 'documents' }).first().click();
  await page.waitForSelector('h2#errors');
  await check(page, 'asset');
  report({ event: 'drilled', buttons: await page.locator('button').allInnerTexts() });

  // Live: the tenant page in one tab; the check run from another.
  const watcher = await page.context().newPage();
  await watcher.goto(tenantUrl);
  await watcher.waitForSelector('#live:has-text("on")', { timeout: WAIT });
  const before = await watcher.locator('.card').first().getAttribute('data-status');
  await watcher.evaluate(() => { window.notReloaded = true; });
  await page.goto(checkUrl);
  await page.getByRole('button', { name: 'Run now' }).click();
  await page.waitForSelector('.flash');
  const flash = await page.locator('.flash').innerText();
  await watcher.waitForSelector('.card[data-status="UNHEALTHY"]', { timeout: WAIT });
  const word = await watcher.locator('.card[data-status="UNHEALTHY"] .chip .word').first().innerText();
  const kept = await watcher.evaluate(() => window.notReloaded === true);
  await shot(watcher, 'tenant-live-red');
  report({ event: 'live', before, word, notReloaded: kept, flash });

  // The same pages at 360 px.
  const narrow = await signIn('operator-token', NARROW);
  await narrow.page.goto(tenantUrl);
  await check(narrow.page, 'tenant-360');
  await narrow.page.goto(checkUrl);
  await check(narrow.page, 'check-360');
  await narrow.context.close();

  // The action in the audit log, as an admin sees it.
  const admin = await signIn('admin-token');
  await admin.page.goto(`${base}/audit`);
  await check(admin.page, 'audit');
  const rows = await admin.page.locator('tbody tr').allInnerTexts();
  report({ event: 'audit', rows });
  await admin.context.close();

  // A viewer: no buttons.
  const viewer = await signIn('viewer-token');
  await viewer.page.goto(checkUrl);
  const viewerButtons = await viewer.page.locator('main button').count();
  await check(viewer.page, 'check-as-viewer');
  report({ event: 'viewer', buttons: viewerButtons });
  await viewer.context.close();

  // Another tenant's pages.
  const globex = await signIn('globex-viewer-token');
  const statuses = [];
  for (const url of [tenantUrl, checkUrl]) {
    const answer = await globex.page.goto(url);
    statuses.push(answer.status());
  }
  await check(globex.page, 'not-found');
  report({ event: 'other-tenant', statuses });
  await globex.context.close();
} finally {
  await browser.close();
}
