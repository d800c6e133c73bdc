import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  findReportFiles,
  REPORT_OUTPUT_LIMIT,
  reportOutput,
  type ReportOutput,
} from '../../src/action/outputs';
import type { Report } from '../../src/report/types';

const NEW = 'fedcba987654';
function bigReport(hosts: number, failEvery: number): Report {
  const names = Array.from({ length: hosts }, (_, i) => `site-${String(i).padStart(5, '0')}`);
  const failed = (i: number) => i % failEvery === 0;
  return {
    schema: 1,
    project: 'fleet',
    status: 'partial_success',
    phase: 'sites',
    systemsDeployed: names.filter((_, i) => !failed(i)),
    durationSeconds: 100,
    startedAt: '2026-11-23T04:00:00.000Z',
    finishedAt: '2026-11-23T04:01:40.000Z',
    release: { id: NEW, commit: NEW + 'f'.repeat(28), ref: 'main' },
    run: { id: '1-1' },
    phasesRequested: ['all'],
    error: { class: 'health-failed', message: 'site-00000: app: got 503' },
    phases: [
      {
        name: 'sites',
        kind: 'stage',
        status: 'rolled_back',
        startedAt: '',
        durationMs: 90_000,
        hosts: names.map((host, i) => ({
          host,
          ok: !failed(i),
          durationMs: 4000,
          attempts: [{ attempt: 1, ok: !failed(i), durationMs: 4000 }],
          steps: [{ name: 'up', ok: true, durationMs: 900, output: 'x'.repeat(400) }],
          health: [{ check: 'app', ok: !failed(i), attempts: 1, durationMs: 100 }],
        })),
        tests: { on: 'runner', ok: true, exitCode: 0, durationMs: 1, outputTail: 'y'.repeat(4000) },
      },
    ],
    hosts: names.map((host, i) => ({
      host,
      stage: 'sites',
      before: '0123456789ab',
      after: failed(i) ? '0123456789ab' : NEW,
      state: failed(i) ? 'previous' : 'new',
    })),
    audit: names.map((host) => ({ time: '2026-11-23T04:00:01.000Z', action: 'deploy', host })),
  };
}

describe('the report output', () => {
  it('is the whole report while it fits', () => {
    const r = bigReport(10, 5);
    expect(reportOutput(r, '/tmp/r.json')).toEqual({ json: JSON.stringify(r), compacted: false });
  });

  it('above ~900 kB: per-host details go first, status and failed hosts stay, and it says where the rest is', () => {
    const r = bigReport(1500, 20);
    expect(Buffer.byteLength(JSON.stringify(r))).toBeGreaterThan(REPORT_OUTPUT_LIMIT);
    const out = reportOutput(r, '/runner/temp/homelab-deploy-report.json');
    expect(out.compacted).toBe(true);
    expect(Buffer.byteLength(out.json)).toBeLessThanOrEqual(REPORT_OUTPUT_LIMIT);
    const c = JSON.parse(out.json) as ReportOutput;
    expect(c).toMatchObject({
      status: 'partial_success',
      phase: 'sites',
      error: r.error,
      release: r.release,
    });
    expect(c.systemsDeployed).toHaveLength(1425);
    expect(c.hosts).toHaveLength(1500);
    expect(c.phases[0]).toMatchObject({ name: 'sites', status: 'rolled_back', hosts: [] });
    expect(c.truncated).toMatchObject({
      reportFile: '/runner/temp/homelab-deploy-report.json',
      omitted: ['phases[].hosts', 'phases[].tests.outputTail', 'audit'],
    });
  });

  it('keeps cutting until it fits: hosts that ended fine, then all hosts, then the host lists', () => {
    const r = bigReport(1500, 20);
    const tight = reportOutput(r, 'f', 60_000);
    const c = JSON.parse(tight.json) as ReportOutput;
    expect(Buffer.byteLength(tight.json)).toBeLessThanOrEqual(60_000);
    expect(c.hosts.map((h) => h.state)).toEqual(Array(75).fill('previous'));
    expect(c.truncated?.omitted).toContain('hosts that ended on the new release (see systemsDeployed)');
    const tiny = JSON.parse(reportOutput(r, 'f', 2_000).json) as ReportOutput;
    expect(tiny).toMatchObject({ status: 'partial_success', hosts: [], systemsDeployed: [] });
  });
});

describe('merge-reports file lists', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-find-'));
  fs.mkdirSync(path.join(dir, 'reports'));
  for (const f of ['b.json', 'a.json', 'notes.txt']) fs.writeFileSync(path.join(dir, 'reports', f), '{}');
  fs.writeFileSync(path.join(dir, 'one.json'), '{}');

  it('takes files, directories and *-patterns in the file name, sorted, each once', () => {
    const abs = (f: string) => path.join(dir, f);
    expect(findReportFiles(['reports/*.json', 'reports', 'one.json'], dir)).toEqual(
      [abs('one.json'), abs('reports/a.json'), abs('reports/b.json')].sort(),
    );
    expect(findReportFiles(['reports/a*'], dir)).toEqual([abs('reports/a.json')]);
    // Nothing downloaded (no job left a report) is an empty list, not an error.
    expect(findReportFiles(['missing-dir/*.json'], dir)).toEqual([]);
  });

  it('names what it cannot find', () => {
    expect(() => findReportFiles(['nope.json'], dir)).toThrow(
      'merge-reports: no such file or directory: "nope.json".',
    );
    expect(() => findReportFiles(['*/x.json'], dir)).toThrow('"*" is supported in the file name only');
  });
});
