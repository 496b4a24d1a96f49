// First contentful paint of a page, for the benches (tests/benches/web.rs,
// tests/benches/status_page.rs): <loads> loads at 1,440 px, each in a fresh
// browser context (nothing cached), optionally with a session cookie.
//
// Usage: node fcp.mjs URL LOADS [COOKIE]   (COOKIE as `name=value`)
// Prints one JSON line: {event: "fcp", times: [ms...]}.

import { launch, report } from './browser.mjs';

const [url, loads, cookie] = process.argv.slice(2);
const browser = await launch();
try {
  const times = [];
  for (let i = 0; i < Number(loads ?? 20); i += 1) {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    if (cookie) {
      const at = cookie.indexOf('=');
      await context.addCookies([{ name: cookie.slice(0, at), value: cookie.slice(at + 1), url }]);
    }
    const page = await context.newPage();
    const response = await page.goto(url, { waitUntil: 'load' });
    if (response.status() !== 200) throw new Error(`${url} answered ${response.status()}`);
    // The paint entry may land after `load`: wait for it (at most 5 s).
    const ms = await page.evaluate(
      () =>
        new Promise((resolve) => {
          const seen = () => performance.getEntriesByName('first-contentful-paint')[0]?.startTime;
          if (seen() !== undefined) resolve(seen());
          new PerformanceObserver(() => {
            if (seen() !== undefined) resolve(seen());
          }).observe({ type: 'paint', buffered: true });
          setTimeout(() => resolve(null), 5000);
        }),
    );
    times.push(ms);
    await context.close();
  }
  report({ event: 'fcp', times });
} catch (e) {
  report({ event: 'error', message: String(e?.stack ?? e) });
  process.exitCode = 1;
} finally {
  await browser.close();
}
