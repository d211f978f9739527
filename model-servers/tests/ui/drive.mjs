// Drives GET /ui of running model servers in headless Chromium (Debian's /usr/bin/chromium through
// the repository's playwright-core; no browser is downloaded). Called by tests/test_ui.py with a
// JSON list of cases, {url, input: {prompt?|file?}}; prints one JSON line per case with what a
// person would see on the page: the task shown, the latency line, the error line, the answer, the
// image's size, and anything the page logged as an error.
import { chromium } from 'playwright-core';

const cases = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: process.env.HWAI_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const out = [];
try {
  for (const c of cases) {
    const page = await browser.newPage();
    const problems = [];
    const outside = [];
    page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
    page.on('pageerror', (e) => problems.push(e.message));
    const origin = new URL(c.url).origin;
    await page.route('**/*', (route) => {
      if (route.request().url().startsWith(origin)) return route.continue();
      outside.push(route.request().url());
      return route.abort();
    });
    await page.goto(`${c.url}/ui`);
    await page.waitForSelector('#run:not([disabled])', { timeout: 60000 });
    if (c.input.file !== undefined) await page.setInputFiles('#file', c.input.file);
    if (c.input.prompt !== undefined) await page.fill('#prompt', c.input.prompt);
    await page.click('#run');
    // done when the latency line holds a figure or the error line a message
    await page.waitForFunction(() => /ms$/.test(document.getElementById('latency').textContent) || document.getElementById('error').textContent !== '', null, { timeout: 120000 });
    out.push({
      url: c.url,
      task: await page.textContent('#task'),
      latency: await page.textContent('#latency'),
      error: await page.textContent('#error'),
      result: await page.textContent('#result'),
      image: await page.evaluate(() => { const i = document.getElementById('image'); return i.classList.contains('hidden') ? null : { width: i.naturalWidth, height: i.naturalHeight, complete: i.complete }; }),
      problems,
      outside,
    });
    await page.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
