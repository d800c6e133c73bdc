import { randomBytes } from 'node:crypto';
import type { StepReport } from '../report/types';
import type { SshConnection } from './connection';

export interface Step {
  name: string;
  script: string;
  /** Shown in the report instead of the script (scripts can be long); must not contain secrets. */
  display?: string;
  /** Keep going after this step fails. */
  optional?: boolean;
}

export interface StepsResult {
  ok: boolean;
  steps: StepReport[];
  failed?: StepReport;
  outputs: Record<string, string>;
}

const TAIL = 4000;

/**
 * Runs several steps in one remote shell (one round trip) while keeping each step's exit code and output apart.
 * Step boundaries are printed with a random marker the steps cannot forge.
 */
export async function runSteps(
  conn: SshConnection,
  steps: Step[],
  // Without timeoutMs the host's ssh.command_timeout applies (see ExecOptions).
  opts: { timeoutMs?: number; signal?: AbortSignal; stdin?: string } = {},
): Promise<StepsResult> {
  const mark = `@@hd-${randomBytes(8).toString('hex')}@@`;
  const body = steps
    .map((s, i) => {
      const onFail = s.optional ? '' : ` || exit $__rc`;
      return [
        `__s${i}() {`,
        s.script,
        `}`,
        `printf '%s begin ${i}\\n' '${mark}'`,
        `__t=$(date +%s%N 2>/dev/null || echo 0)`,
        `( __s${i} ) 2>&1 </dev/null; __rc=$?`,
        `printf '\\n%s end ${i} %s %s\\n' '${mark}' "$__rc" "$(date +%s%N 2>/dev/null || echo 0) $__t"`,
        `[ "$__rc" -eq 0 ]${onFail}`,
      ].join('\n');
    })
    .join('\n');
  const res = await conn.exec(`${body}\nexit 0`, opts);
  const out = res.stdout;
  const reports: StepReport[] = [];
  const outputs: Record<string, string> = {};
  steps.forEach((s, i) => {
    const begin = out.indexOf(`${mark} begin ${i}\n`);
    if (begin < 0) return;
    const from = begin + `${mark} begin ${i}\n`.length;
    const endRe = new RegExp(`\\n${mark} end ${i} (\\d+) (\\d+) (\\d+)\\n`);
    const m = endRe.exec(out.slice(from));
    const text = m ? out.slice(from, from + m.index) : out.slice(from);
    const exitCode = m ? Number(m[1]) : null;
    const durationMs =
      m && m[2] !== '0' && m[3] !== '0' ? Math.max(0, (Number(m[2]) - Number(m[3])) / 1e6) : 0;
    outputs[s.name] = text;
    reports.push({
      name: s.name,
      command: s.display ?? firstLine(s.script),
      exitCode,
      durationMs: Math.round(durationMs),
      output: text.length > TAIL ? '…' + text.slice(text.length - TAIL) : text,
      ok: exitCode === 0,
    });
  });
  const failed = reports.find((r, i) => !r.ok && !steps[i].optional);
  if (!failed && reports.length < steps.filter((s) => !s.optional).length) {
    // The script died between markers (killed, or the shell itself failed): report that honestly.
    const missing = steps[reports.length];
    const r: StepReport = {
      name: missing?.name ?? 'script',
      exitCode: res.code,
      durationMs: 0,
      output: (res.stderr || res.stdout).slice(-TAIL),
      ok: false,
    };
    reports.push(r);
    return { ok: false, steps: reports, failed: r, outputs };
  }
  if (!failed && res.code !== 0) {
    const r: StepReport = {
      name: 'script',
      exitCode: res.code,
      durationMs: res.durationMs,
      output: res.stderr.slice(-TAIL),
      ok: false,
    };
    return { ok: false, steps: [...reports, r], failed: r, outputs };
  }
  return { ok: !failed, steps: reports, failed, outputs };
}

function firstLine(s: string): string {
  const l = s.trim().split('\n')[0];
  return l.length > 120 ? l.slice(0, 117) + '...' : l;
}
