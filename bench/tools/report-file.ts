import * as fs from 'node:fs';
import type { Timing } from '../scenarios/types';

/**
 * The few fields of homelab-deploy's JSON report (`--report-file`) the benchmark reads. The benchmark drives
 * a built CLI and imports nothing of src/, so they are restated here from the README's report description.
 */
export interface RunReport {
  status: string;
  phase: string;
  durationSeconds: number;
  error?: { class: string; message: string };
  phases: { name: string; kind: string; status: string; durationMs: number }[];
  waves?: {
    stage: string;
    index: number;
    targets: string[];
    ok: number;
    failed: number;
    notStarted: number;
    durationMs: number;
  }[];
}

/** The report a run wrote, or why there is none to read. */
export function readReport(file: string | undefined): RunReport | string {
  if (!file) return 'the run was not asked for a report file';
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    return `no report at ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
  try {
    const r = JSON.parse(text) as RunReport;
    if (typeof r.status !== 'string' || !Array.isArray(r.phases))
      return `${file} is not a homelab-deploy report`;
    return r;
  } catch (err) {
    return `${file} is not JSON: ${(err as Error).message}`;
  }
}

const seconds = (ms: number) => ms / 1000;

/**
 * A run's time, broken down from its report: the phases before the stage (pre-flight, secrets, snapshot), then
 * every wave of each fleet stage (its size, what failed), then the report's own total.
 */
export function reportTimings(tool: string, what: string, r: RunReport): Timing[] {
  const out: Timing[] = [];
  const stagesWithWaves = new Set((r.waves ?? []).map((w) => w.stage));
  for (const p of r.phases) {
    if (stagesWithWaves.has(p.name)) {
      for (const w of (r.waves ?? []).filter((x) => x.stage === p.name)) {
        const extra = [
          w.failed ? `${w.failed} failed` : '',
          w.notStarted ? `${w.notStarted} not started` : '',
        ]
          .filter(Boolean)
          .join(', ');
        out.push({
          tool,
          label: `${what}: ${p.name} wave ${w.index} (${w.targets.length} targets${extra ? `, ${extra}` : ''})`,
          seconds: seconds(w.durationMs),
        });
      }
      const waveSum = (r.waves ?? []).filter((x) => x.stage === p.name).reduce((s, w) => s + w.durationMs, 0);
      out.push({ tool, label: `${what}: ${p.name} waves together`, seconds: seconds(waveSum) });
      out.push({ tool, label: `${what}: ${p.name} phase (report)`, seconds: seconds(p.durationMs) });
    } else out.push({ tool, label: `${what}: ${p.name} phase`, seconds: seconds(p.durationMs) });
  }
  out.push({ tool, label: `${what}: total (report, ${r.status})`, seconds: r.durationSeconds });
  return out;
}
