import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { releaseIdFor } from '../../src/run/release';
import { deploy } from '../../src/engine';
import { renderHistoryHtml } from '../../src/history/html';
import { computeKpis, type DeployRecord } from '../../src/history/kpi';
import { recordsFromReports } from '../../src/history/records';
import { incidents, trends } from '../../src/history/trends';
import { renderReportHtml } from '../../src/report/html';
import type { Report } from '../../src/report/types';
import type { DeployEvent } from '../../src/run/events';
import { Redactor } from '../../src/secrets/redact';
import { startBrowser, type Browser } from '../helpers/browser';
import { fleetReport } from '../helpers/fleet-report';
import { useHomelab, type Project } from '../fixtures/pipeline';

/**
 * The HTML pages of real runs, opened in headless Chromium: what a person sees after a deploy that failed and
 * rolled back (one rollback failing), one that retried and ended partial, a 1500-target rollout, hostile strings,
 * and the history of those runs. Pages and screenshots stay in OUT for a look.
 */

const OUT = path.join(os.tmpdir(), 'homelab-deploy-html');
const SECRET = 'html-s3cret $v';
const env = { ...process.env, HD_TEST_SECRET: SECRET };
const lab = useHomelab();
const realReports: Report[] = [];
let browser: Browser;

beforeAll(async () => {
  fs.mkdirSync(OUT, { recursive: true });
  browser = await startBrowser();
}, 60_000);
afterAll(async () => {
  await browser?.close();
});

async function run(p: Project, onEvent?: (e: DeployEvent) => void): Promise<Report> {
  const report = await deploy({
    configPath: p.configPath,
    phase: 'all',
    ref: 'HEAD',
    env,
    redactor: new Redactor(),
    onEvent,
  });
  realReports.push(report);
  return report;
}

async function v1Live(): Promise<{ p: Project; v1: string; v2: string }> {
  const p = await lab.project();
  const first = await run(p);
  expect([first.status, first.error]).toEqual(['success', undefined]);
  return { p, v1: first.release.id, v2: releaseIdFor(p.commit('v2')) };
}

// Page-side expressions as text: the test program has no DOM types.
const BACKGROUND = 'getComputedStyle(document.body).backgroundColor';
const ELEMENTS = "document.getElementsByTagName('*').length";
const PWNED = 'window.__pwned';
const rowsAre = (n: number) => `document.querySelectorAll('#hd-rows tr').length === ${n}`;

interface Opened {
  page: Page;
  requests: string[];
  errors: string[];
}

/** Writes the page, opens it, screenshots it (light and dark) and checks it stayed offline and error-free. */
async function show(name: string, html: string): Promise<Opened> {
  const file = path.join(OUT, `${name}.html`);
  fs.writeFileSync(file, html);
  const dark = await browser.open(file, { colorScheme: 'dark' });
  const darkBg = await dark.page.evaluate(BACKGROUND);
  await dark.page.screenshot({ path: path.join(OUT, `${name}-dark.png`), fullPage: true });
  await dark.page.close();
  const errors: string[] = [];
  const opened = await browser.open(file, { colorScheme: 'light' });
  opened.page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  opened.page.on('pageerror', (e) => errors.push(String(e)));
  const lightBg = await opened.page.evaluate(BACKGROUND);
  const shot = path.join(OUT, `${name}.png`);
  await opened.page.screenshot({ path: shot, fullPage: true });
  console.log(`${name}: ${file}\n  screenshots: ${shot} and ${name}-dark.png`);
  // Readable both ways: the page follows the reader's colour scheme.
  expect(lightBg).toBe('rgb(255, 255, 255)');
  expect(darkBg).toBe('rgb(13, 17, 23)');
  expect(html).not.toContain(SECRET);
  return { ...opened, errors };
}

const text = (page: Page, selector: string) => page.locator(selector).innerText();
const count = (page: Page, selector: string) => page.locator(selector).count();

/** Opens the target table through its search box and returns the rows it shows. */
async function search(page: Page, query: string): Promise<string[]> {
  await page.fill('#hd-q', query);
  await page.waitForFunction("(document.getElementById('hd-count')?.textContent ?? '') !== ''");
  return page.locator('#hd-rows tr').allInnerTexts();
}

describe('the HTML report of real runs', () => {
  it('production fails and one rollback fails: status, failed phase, both rollbacks and the counts are shown', async () => {
    const { p, v1, v2 } = await v1Live();
    p.fault('rtx1080', v2);
    const report = await run(p, (e) => {
      // Production is failing its checks: take away the release its rollback would return to.
      if (e.type === 'host-end' && e.phase === 'production' && !e.ok)
        fs.rmSync(path.join(p.paths.rtx1080, 'releases', v1), { recursive: true, force: true });
    });
    expect(report.status).toBe('failed');
    expect(report.rollbackFailed).toBe(true);
    // What the hosts really run, read from their filesystems: the page must say the same.
    expect(p.current('thinkpad')).toBe(v1);
    expect(p.current('rtx1080')).toBe(v2);

    const { page, requests, errors } = await show('rollback-failed', renderReportHtml(report));
    expect(requests).toEqual([]);

    expect(await page.locator('#status').getAttribute('data-status')).toBe('failed');
    const status = await text(page, '#status');
    expect(status).toContain('Deploy failed');
    expect(status).toContain('health-failed in production on rtx1080');
    expect(status).toContain('expected status 200, got 503');
    expect(status).toContain(`release: ${v2}`);
    expect(status).toContain(`commit: ${report.release.commit.slice(0, 12)}`);

    const alarm = page.locator('#rollback-failed');
    expect(await alarm.isVisible()).toBe(true);
    const alarmText = await alarm.innerText();
    expect(alarmText).toContain('ROLLBACK FAILED');
    expect(alarmText).toContain(`rtx1080: rollback to ${v1} failed; now on ${v2}`);
    expect(alarmText).toContain(`rollback target ${v1} is missing`);

    for (const h of ['thinkpad', 'rtx1080', 'vps'])
      expect(await count(page, `.tl-row[data-target="${h}"]`)).toBe(1);
    // The failed phase is marked on the run's row, in the target's row and in the phase table.
    expect(await page.locator('.tl-row.run .seg[data-phase="production"]').getAttribute('data-kind')).toBe(
      'failed',
    );
    const rtxProduction = page.locator('.tl-row[data-target="rtx1080"] .seg[data-phase="production"]');
    expect(await rtxProduction.first().getAttribute('data-kind')).toBe('failed');
    expect(await rtxProduction.first().isVisible()).toBe(true);
    expect(await count(page, '.tl-row[data-target="rtx1080"] .seg[data-kind="rollback-failed"]')).toBe(1);
    expect(await count(page, '.tl-row[data-target="thinkpad"] .seg[data-kind="rollback"]')).toBe(1);
    expect(await count(page, '.tl-row[data-target="vps"] .seg[data-phase="production"]')).toBe(0);
    expect(await page.locator('#phases tr[data-phase="production"]').getAttribute('data-stopped')).toBe(
      'true',
    );
    expect(await text(page, '#phases tr[data-phase="production"]')).toContain('failed here');

    // Rollbacks: staging's went back to v1, production's failed and left v2 in place.
    const tp = await text(page, '#rollbacks tr[data-target="thinkpad"]');
    expect(tp).toContain(v1);
    expect(tp).toContain('rolled back');
    const rtx = await text(page, '#rollbacks tr[data-target="rtx1080"]');
    expect(rtx).toContain('ROLLBACK FAILED');
    expect(rtx).toContain(`${v2} (new)`);

    // Counts: failures by class, and the targets by result.
    expect(await text(page, '#failure-classes tr[data-class="health-failed"] td.num')).toBe('1');
    expect(await text(page, '#failure-classes tr[data-class="command-failed"] td.num')).toBe('1');
    expect(await text(page, '#failure-classes tr[data-class="command-failed"]')).toContain(
      'rollback after production',
    );
    expect(await text(page, '[data-count="targets"] .n')).toBe('3');
    expect(await text(page, '[data-count="rolled_back"] .n')).toBe('1');
    expect(await text(page, '[data-count="rollback_failed"] .n')).toBe('1');
    expect(await text(page, '[data-count="failures"] .n')).toBe('2');
    expect(await text(page, '#failed-checks')).toContain('rtx1080');
    expect(await text(page, '#tests')).toContain('passed');

    // The table is not built until asked for; a search builds it with the matching target only.
    expect(await count(page, '#hd-rows tr')).toBe(0);
    const rows = await search(page, 'rtx1080');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toContain('ROLLBACK FAILED');
    expect(rows[0]).toContain('health-failed');
    expect(errors).toEqual([]);
  }, 120_000);

  it('the public stage fails after 3 attempts: partial success, each attempt and wait drawn, the VPS rolled back', async () => {
    const { p, v1, v2 } = await v1Live();
    p.fault('vps', v2);
    const report = await run(p);
    expect(report.status).toBe('partial_success');
    expect(p.current('vps')).toBe(v1);

    const { page, errors } = await show('partial-success', renderReportHtml(report));
    expect(await text(page, '#status .headline')).toContain('Partial success: manual intervention required');
    expect(await text(page, '#status')).toContain('health-failed in public on vps');
    expect(await count(page, '#rollback-failed')).toBe(0);

    const vps = '.tl-row[data-target="vps"]';
    expect(await count(page, `${vps} .seg[data-phase="public"][data-kind="failed"]`)).toBe(3);
    expect(await count(page, `${vps} .seg[data-phase="public"][data-kind="wait"]`)).toBe(2);
    expect(
      await page.locator(`${vps} .seg[data-phase="public"][data-kind="failed"]`).last().innerText(),
    ).toContain('public #3');
    expect(await count(page, `${vps} .seg[data-kind="rollback"]`)).toBe(1);
    expect(await text(page, '#failures tr[data-target="vps"] td.num')).toBe('3');
    expect(await text(page, '#rollbacks tr[data-target="vps"]')).toContain(`${v1} (previous)`);
    expect(await text(page, '[data-count="ok"] .n')).toBe('2');
    expect(await text(page, '[data-count="rolled_back"] .n')).toBe('1');

    // Filtering by result lists the two targets on the new release, in full.
    await page.locator('#hd-all > summary').click();
    await page.selectOption('#hd-filter', 'result:ok');
    await page.waitForFunction(rowsAre(2));
    const names = await page
      .locator('#hd-rows tr')
      .evaluateAll((trs) => trs.map((t) => t.getAttribute('data-target')));
    expect(names.sort()).toEqual(['rtx1080', 'thinkpad']);
    expect(errors).toEqual([]);
  }, 120_000);

  it('escapes every string: hostile names, messages, outputs and links stay text', async () => {
    const base = realReports.find((r) => r.rollbackFailed);
    expect(base).toBeDefined();
    const name = `<img src=x onerror="window.__pwned=1">"'&amp;`;
    const closer = '</script><script>window.__pwned=2</script><!--';
    const asJson = (s: string) => JSON.stringify(s).slice(1, -1);
    const hostile = JSON.parse(JSON.stringify(base).split('rtx1080').join(asJson(name))) as Report;
    hostile.project = `<b id="bold">proj</b>`;
    hostile.release.ref = `"><svg onload="window.__pwned=3">`;
    hostile.run = {
      url: 'javascript:window.__pwned=4',
      id: 'x" onclick="window.__pwned=5',
      repository: 'a/b',
    };
    hostile.error = { ...hostile.error!, message: closer };
    const up = hostile.phases.flatMap((x) => x.hosts).flatMap((h) => h.steps)[0];
    up.output = `${closer}\n<iframe src="https://example.com/"></iframe>`;
    up.ok = false;
    const html = renderReportHtml(hostile);
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<svg onload');
    expect(html).not.toContain('<iframe');
    expect(html).not.toContain(`${closer}`);

    const { page, requests, errors } = await show('hostile', html);
    expect(requests).toEqual([]);
    expect(await page.evaluate(PWNED)).toBeUndefined();
    expect(await count(page, 'img, svg, iframe, b#bold, a[href^="javascript"]')).toBe(0);
    // Exactly the page's own scripts: its table data and its table code.
    expect(await count(page, 'script')).toBe(2);
    expect(await page.locator('.tl-row[data-target] .tl-label').nth(1).textContent()).toBe(name);
    expect(await text(page, '#status')).toContain(closer);
    expect(await text(page, 'h1')).toContain('<b id="bold">proj</b>');
    expect(await text(page, '#status')).toContain('javascript:window.__pwned=4');
    // The table the script builds writes names as text too.
    const rows = await search(page, 'onerror');
    expect(rows).toHaveLength(1);
    expect(await page.locator('#hd-rows tr td').first().textContent()).toBe(name);
    expect(errors).toEqual([]);
  });
});

describe('reports from other versions', () => {
  it('renders a report without the optional parts, and ignores waves it cannot read', async () => {
    const old = {
      schema: 1,
      project: 'old',
      status: 'aborted',
      phase: 'preflight',
      durationSeconds: 2,
      startedAt: '2026-01-05T10:00:00.000Z',
      finishedAt: '2026-01-05T10:00:02.000Z',
      release: { id: 'abc123abc123', commit: 'abc123abc123' + '0'.repeat(28), ref: 'main' },
      run: {},
      error: { class: 'lock-held', message: 'lock on nas is held by run 41' },
      waves: [null, { stage: 7 }, { stage: 'web', index: 1, targets: 'two', ok: 'x' }],
    } as unknown as Report;
    const { page, errors } = await show('old-report', renderReportHtml(old));
    expect(await text(page, '#status')).toContain('Deploy aborted, nothing changed');
    expect(await text(page, '#status')).toContain('lock-held: lock on nas is held by run 41');
    expect(await text(page, '#timeline')).toContain('No phase has a start time.');
    expect(await text(page, '[data-count="targets"] .n')).toBe('0');
    // Only the one readable wave is shown, with what it has.
    expect(await count(page, '#waves tr[data-wave]')).toBe(1);
    expect(await text(page, '#waves tr[data-wave="1"]')).toContain('canary');
    expect(errors).toEqual([]);
  });
});

describe('the HTML report of a 1500-target rollout', () => {
  it('opens with a bounded page, says the escalation first, and finds a failed target by search', async () => {
    const big = fleetReport(1500);
    const small = fleetReport(300);
    const html = renderReportHtml(big);
    const { page, requests, errors } = await show('fleet-1500', html);
    expect(requests).toEqual([]);
    const bigCount = Number(await page.evaluate(ELEMENTS));
    fs.writeFileSync(path.join(OUT, 'fleet-300.html'), renderReportHtml(small));
    const smallPage = await browser.open(path.join(OUT, 'fleet-300.html'));
    const smallCount = Number(await smallPage.page.evaluate(ELEMENTS));
    await smallPage.page.close();
    console.log(
      `fleet page elements before the table opens: ${bigCount} at 1500 targets, ${smallCount} at 300`,
    );
    // Healthy targets add nothing to the page until the table is opened: what is drawn is what failed (46
    // failures, each in the lists, the timeline and the checks), the same at 300 targets as at 1500.
    expect(bigCount).toBeLessThan(2500);
    expect(Math.abs(bigCount - smallCount)).toBeLessThanOrEqual(10);
    expect(await count(page, '#hd-rows tr')).toBe(0);
    expect(await count(page, '.tl-row[data-target]')).toBe(40);
    // Of the 45 that need attention, the one whose rollback failed is drawn first.
    expect(await page.locator('.tl-row[data-target]').first().getAttribute('data-target')).toBe('site-f-044');
    expect(await count(page, '.tl-row[data-target="site-f-044"] .seg[data-kind="rollback-failed"]')).toBe(1);
    expect(await text(page, '[data-count="untouched"] .n')).toBe('599');
    expect(await text(page, '[data-count="ok"] .n')).toBe('856');

    const status = await text(page, '#status');
    expect(status.split('\n')[0]).toMatch(
      /^ESCALATED: failure rate 6 % passed 5 % in wave 3 of sites; rollout stopped/,
    );
    expect(await page.locator('#waves tr[data-wave]').count()).toBe(4);
    expect(await text(page, '#waves tr[data-wave="3"]')).toContain('budget passed');
    expect(await text(page, '#waves tr[data-wave="4"]')).toContain('599 left');
    expect(await text(page, '#failure-classes tr[data-class="unreachable"] td.num')).toBe('10');
    expect(await text(page, '#failure-classes tr[data-class="health-failed"] td.num')).toBe('20');
    expect(await text(page, '#failure-classes tr[data-class="timeout"] td.num')).toBe('10');
    expect(await text(page, '#failure-classes tr[data-class="command-failed"] td.num')).toBe('6');
    // Every failure is listed, each once.
    expect(await count(page, '#failures table.failures tbody tr')).toBe(46);
    expect(await text(page, '#count-kind')).toContain('vercel');

    const rows = await search(page, 'site-f-031');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toContain('timeout');
    expect(rows[0]).toContain('rolled back');
    // A class filter finds the whole class; the unfiltered table pages 200 rows at a time.
    await page.fill('#hd-q', '');
    await page.selectOption('#hd-filter', 'class:unreachable');
    await page.waitForFunction(rowsAre(10));
    await page.selectOption('#hd-filter', '');
    await page.waitForFunction(rowsAre(200));
    expect(await text(page, '#hd-count')).toBe('1500 of 1500 targets, the first 200 shown');
    await page.click('#hd-more');
    await page.waitForFunction(rowsAre(400));
    await page.screenshot({ path: path.join(OUT, 'fleet-1500-table.png') });
    expect(errors).toEqual([]);
  });
});

describe('the HTML history page', () => {
  it('shows success rate, deploy time and MTTR per stage of the runs above, as charts and tables', async () => {
    // Both projects: v1 ok; then production failed (staging rolled back) and public rolled back.
    expect(realReports.length).toBe(4);
    const records = recordsFromReports(realReports);
    const kpis = computeKpis(records);
    const { page, requests, errors } = await show(
      'history',
      renderHistoryHtml(records, kpis, { project: 'sample' }),
    );
    expect(requests).toEqual([]);
    // staging: ok, rolled back, ok, ok; production: ok, failed, ok, ok; public: ok, ok, rolled back (never reached once).
    expect(await text(page, '#kpis tr[data-stage="staging"] [data-kpi="success-rate"]')).toBe('75 %');
    expect(await text(page, '#kpis tr[data-stage="production"] [data-kpi="success-rate"]')).toBe('75 %');
    expect(await text(page, '#kpis tr[data-stage="public"] [data-kpi="success-rate"]')).toBe('66.7 %');
    expect(await text(page, '#kpis tr[data-stage="staging"] [data-kpi="mttr"]')).not.toBe('—');
    expect(await text(page, '#kpis tr[data-stage="public"]')).toContain('open since');
    expect(await text(page, '#open-incidents')).toContain('public failing since');
    for (const chart of ['chart-success', 'chart-deploy-time', 'chart-mttr'])
      expect(await count(page, `#${chart} svg`)).toBe(1);
    expect(await count(page, '#chart-success g.series')).toBe(3);
    expect(await count(page, '#recent tbody tr')).toBe(records.length);
    expect(await count(page, '#recent tr[data-outcome="rolled_back"]')).toBe(2);
    expect(errors).toEqual([]);
  });

  it('buckets a month of deploys by day, agrees with the KPIs, and escapes stage names', async () => {
    const stage = '<script>window.__pwned=1</script>';
    const day0 = Date.parse('2026-11-01T03:00:00.000Z');
    const records: DeployRecord[] = [];
    for (let i = 0; i < 30; i++)
      for (const [s, failEvery] of [
        ['production', 7],
        [stage, 4],
      ] as const) {
        const time = new Date(day0 + i * 86_400_000 + (s === stage ? 3_600_000 : 0)).toISOString();
        const failed = i % failEvery === failEvery - 1;
        records.push({
          time,
          stage: s,
          release: `rel${i}`,
          hosts: ['a', 'b'],
          outcome: failed ? 'rolled_back' : 'success',
          durationMs: failed ? undefined : 20_000 + i * 500,
          rollbackMs: failed ? 4_000 : undefined,
          failedAt: failed ? time : undefined,
        });
      }
    const kpis = computeKpis(records);
    const t = trends(records);
    expect(t.bucket).toBe('day');
    // The trend's incidents are the KPIs' incidents: same count, same mean recovery time.
    for (const k of kpis) {
      const recovered = incidents(records).filter((x) => x.stage === k.stage && x.recoveryMs !== undefined);
      expect(recovered.length).toBe(k.incidents);
      expect(recovered.reduce((a, x) => a + x.recoveryMs!, 0) / recovered.length).toBeCloseTo(k.mttrMs!, 6);
      expect(t.points.filter((p) => p.stage === k.stage).reduce((a, p) => a + p.recoveries, 0)).toBe(
        k.incidents,
      );
    }
    const html = renderHistoryHtml(records, kpis, { generatedAt: '2026-12-01T00:00:00Z' });
    expect(html).not.toContain(stage);
    const { page, errors } = await show('history-month', html);
    expect(await page.evaluate(PWNED)).toBeUndefined();
    expect(await count(page, 'script')).toBe(0);
    expect(await page.locator('#kpis tbody tr').nth(0).locator('td').first().textContent()).toBe(stage);
    expect(await text(page, `#kpis tr[data-stage="production"] [data-kpi="success-rate"]`)).toBe('86.7 %');
    expect(
      await page.locator('#chart-success g.series[data-stage="production"]').getAttribute('data-points'),
    ).toBe('30');
    expect(await count(page, '#chart-mttr g.series[data-stage="production"] circle')).toBe(4);
    expect(await count(page, '#trend-table tbody tr')).toBe(60);
    expect(await count(page, '#trend-table tr[data-start="2026-11-07T00:00:00.000Z"]')).toBe(2);
    expect(errors).toEqual([]);
  });
});
