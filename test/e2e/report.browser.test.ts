/**
 * The HTML report in a real browser: Debian's chromium (/usr/bin/chromium, `make browser`)
 * driven by playwright-core; no browser is downloaded. Writes the report of a synthetic result
 * (2,700 minutes × 4 policies, an inf2 shortage) to a temp dir, opens it from disk with every
 * network request refused, and checks each policy × chart kind drew something visible, the page
 * logged no errors, and the hover read-out works. A full-page screenshot is left for a human at
 * $HWAI_REPORT_SCREENSHOT, or in the temp dir (its path is printed).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHART_KINDS, renderReport } from '../../shared/src/report/html.ts';
import { makeSimulationResult, SEED_POLICIES } from '../unit/factories/sim-result.ts';

const CHROMIUM = '/usr/bin/chromium';
const MINUTES = 2700;

describe('HTML report in headless Chromium', () => {
  let dir: string;
  let browser: BrowserContext;
  let page: Page;
  const problems: string[] = [];
  const requests: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`make browser\` (apt-get install chromium)`);
    dir = mkdtempSync(join(tmpdir(), 'hwai-report-'));
    const result = makeSimulationResult({
      minutes: MINUTES,
      capacity: [{ family: 'inf2', fromMinute: 1650, toMinute: 2250, maxInstances: 'hold' }],
      demand: { minRpm: 40, maxRpm: 2960, periodMinutes: 900 },
    });
    const file = join(dir, 'report.html');
    writeFileSync(file, renderReport(result, ['Synthetic data from the test factory, not the simulator.']));

    // A fresh profile in the temp dir (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath: CHROMIUM,
      viewport: { width: 1440, height: 900 },
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    const url = pathToFileURL(file).href;
    await page.route('**/*', (route) => {
      const u = route.request().url();
      if (u === url) return route.continue();
      requests.push(u);
      return route.abort();
    });
    await page.goto(url, { waitUntil: 'load' });
  });

  afterAll(async () => {
    await browser?.close();
    if (dir && !process.env.HWAI_KEEP_REPORT) rmSync(dir, { recursive: true, force: true });
  });

  it('draws every chart of every policy with visible marks', async () => {
    const stats = await page.evaluate(
      ({ policies, kinds }) =>
        policies.flatMap((p) =>
          kinds.map((k) => {
            const charts = [...document.querySelectorAll(`svg[data-chart="${CSS.escape(`${p}/${k}`)}"]`)];
            const marks = charts.flatMap((c) => [...c.querySelectorAll('.mark')]);
            const visible = marks.filter((m) => {
              const r = m.getBoundingClientRect();
              return r.width > 1 && r.height > 0;
            });
            const box = charts[0]?.getBoundingClientRect();
            return { chart: `${p}/${k}`, charts: charts.length, marks: marks.length, visible: visible.length, width: box?.width ?? 0, height: box?.height ?? 0 };
          }),
        ),
      { policies: SEED_POLICIES, kinds: [...CHART_KINDS] },
    );
    expect(stats).toHaveLength(SEED_POLICIES.length * CHART_KINDS.length);
    for (const s of stats) {
      expect(s.charts, s.chart).toBe(1);
      expect(s.visible, `${s.chart}: visible marks`).toBeGreaterThan(0);
      expect(s.width, `${s.chart}: width`).toBeGreaterThan(600);
      expect(s.height, `${s.chart}: height`).toBeGreaterThan(15);
    }
  });

  it('shows the comparison table with a row per policy, then the bound', async () => {
    const rows = await page.locator('table[data-table="comparison"] tbody tr').allTextContents();
    expect(rows).toHaveLength(SEED_POLICIES.length + 1);
    SEED_POLICIES.forEach((p, i) => expect(rows[i]).toContain(p));
    expect(rows.at(-1)).toMatch(/^bound\$/);
  });

  it('reads out the numbers under the pointer, on one cursor across the charts', async () => {
    const chart = page.locator('svg[data-chart="step/served"]');
    await chart.scrollIntoViewIfNeeded();
    const box = await chart.boundingBox();
    if (!box) throw new Error('no box');
    await page.mouse.move(box.x + box.width * 0.7, box.y + box.height * 0.5);
    const tip = page.locator('#tip');
    await expect.poll(() => tip.isVisible()).toBe(true);
    expect(await tip.textContent()).toMatch(/minute \d+/);
    const cursors = await page.locator('section[data-policy="step"] .cursor[visibility="visible"]').count();
    expect(cursors).toBe(CHART_KINDS.length);
    await page.mouse.move(2, 2);
  });

  it('leaves a full-page screenshot', async () => {
    const shot = process.env.HWAI_REPORT_SCREENSHOT ?? join(dir, 'report.png');
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: shot, fullPage: true });
    expect(existsSync(shot)).toBe(true);
    console.log(`report screenshot: ${shot}`);
  });

  it('logged no errors and fetched nothing', () => {
    expect(problems).toEqual([]);
    expect(requests).toEqual([]);
  });
});
