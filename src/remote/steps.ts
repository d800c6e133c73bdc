import { randomBytes } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import type { StepReport } from '../report/types';
import type { SshConnection } from './connection';

export interface Step {
  name: string;
  script: string;
  /** Shown in the report instead of the script (scripts can be long); must not contain secrets. */
  display?: string;
  /** Keep going after this step fails. */
  optional?: boolean;
  /**
   * Run the step in a subshell of its own. Without it a step runs in the script's shell (no process started for
   * it) unless its text shows it needs one (see subshellReason); set it for a step that changes shell state in a
   * way that text does not show, e.g. through a function an earlier step defined. Steps in the script's shell
   * share its plain (lower-case) variables; the environment, options and working folder stay each step's own.
   */
  isolated?: boolean;
}

export interface StepsResult {
  ok: boolean;
  steps: StepReport[];
  failed?: StepReport;
  outputs: Record<string, string>;
}

const TAIL = 4000;
/** Output kept per step (the report shows only its tail); a step printing more keeps its last part. */
const MAX_STEP_OUTPUT = 256 * 1024;

/**
 * Why a step cannot run in the script's own shell, or undefined when it can. In the script's shell a step's
 * `exit 1` ends the script with that code, which is what a failing step does anyway; but an early successful exit,
 * changed shell options, traps, exec, background jobs, environment or working directory would reach the steps
 * after it, so such steps get a subshell. The test reads the text, so it errs on the side of a subshell: `exit`
 * in a quoted string counts too. A `cd` needs no subshell: the script returns to its starting folder before the
 * next step. The `last` step has no steps after it: options, variables, jobs or the environment it changes reach
 * no other step, so only an early exit, an optional failure or what could take the script's own framing away
 * (exec, traps, eval, sourced files) still needs a subshell there.
 */
export function subshellReason(step: Step, opts: { last?: boolean } = {}): string | undefined {
  if (step.optional) return 'optional: its failure must not end the script';
  if (step.isolated) return 'isolated';
  const s = step.script;
  const framing: [RegExp, string][] = [
    [/(?<![\w.$-])exec\b/, 'exec'],
    [/(?<![\w.$-])(?:trap|eval|source)\b/, 'changes shell state'],
    [/(?:^|[;&|({]|\b(?:then|do|else)\b)[ \t]*\.[ \t]+\S/m, 'sources a file'],
  ];
  for (const m of s.matchAll(/(?<![\w.$-])exit\b(?:[ \t]+("?)([^\s;&|)}"]+)\1)?/g)) {
    const code = m[2] !== undefined && /^\d{1,3}$/.test(m[2]) ? Number(m[2]) : NaN;
    if (!(code >= 1 && code <= 255)) return `may exit early with success (${m[0].trim()})`;
  }
  for (const [re, why] of framing) if (re.test(s)) return why;
  if (opts.last) return undefined;
  const words: [RegExp, string][] = [
    [/(?<![\w.$-])(?:set|shopt)[ \t]+[-+]/, 'changes shell options'],
    [/(?<![\w.$-])(?:umask|ulimit|readonly|unset|export|alias)\b/, 'changes shell state'],
    // An assignment to an upper-case name may change an environment variable (PATH, HOME) for later steps.
    [/(?:^|[\s;&|({`])[A-Z_][A-Z0-9_]*\+?=(?!=)/m, 'sets an environment variable'],
    // A lone `&` (not `&&`, `>&`, `&>`, `|&`): a job a later step's `wait` would wait for.
    [/(?<![&>|<])&(?![&>])/, 'starts a background job'],
    [/(?<![\w.$-])wait\b/, 'waits for jobs'],
  ];
  for (const [re, why] of words) if (re.test(s)) return why;
  return undefined;
}

/**
 * The remote script for a list of steps. Steps that can run in the script's shell are shell functions called
 * in it; the rest run in a subshell. Each step's boundaries are printed as marker lines (`<mark> b<i>` before,
 * `<mark> e<i> <code>` after) that the client times as they arrive, so the host forks nothing for framing or
 * timing. A failing step ends the script with its exit code (an EXIT trap prints the end marker of a step that
 * leaves through `exit`); only 124 is passed on as 1, because a script exiting 124 reads as the remote timeout.
 */
export function stepsScript(steps: Step[], mark: string): string {
  const lines = [
    `__hd_m=${mark}`,
    '__hd_i=',
    '__hd_w=$PWD',
    `trap '__hd_r=$?; [ -z "$__hd_i" ] || { printf "\\n%s e%s %s\\n" "$__hd_m" "$__hd_i" "$__hd_r"; [ "$__hd_r" -ne 124 ] || exit 1; }' EXIT`,
    // Defined before any runs: a step that does not parse stops the script before anything happened.
    ...steps.map((s, i) => `__hd_s${i}() {\n${s.script}\n}`),
  ];
  let moved = false;
  steps.forEach((s, i) => {
    const sub = subshellReason(s, { last: i === steps.length - 1 }) !== undefined;
    const call = sub ? `( __hd_i=; __hd_s${i} )` : `__hd_s${i}`;
    const after = s.optional ? '' : ` || exit $(( __hd_r == 124 ? 1 : __hd_r ))`;
    lines.push(
      `${moved ? 'cd "$__hd_w" 2>/dev/null; ' : ''}printf '%s b${i}\\n' "$__hd_m"; __hd_i=${i}; ${call} 2>&1 </dev/null; __hd_r=$?; __hd_i=; ` +
        `printf '\\n%s e${i} %s\\n' "$__hd_m" "$__hd_r"; [ "$__hd_r" -eq 0 ]${after}`,
    );
    if (!sub && /(?<![\w.$-])(?:cd|pushd|popd)\b/.test(s.script)) moved = true;
  });
  lines.push('exit 0');
  return lines.join('\n');
}

/** Splits the marker-framed stdout of a steps script into steps as it arrives, noting when each began and ended. */
class StepStream {
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';
  private lineStart = true;
  current = -1;
  readonly parts: { text: string; began: number; ended?: number; code?: number }[] = [];
  private readonly beginRe: RegExp;
  private readonly endRe: RegExp;

  constructor(private readonly mark: string) {
    this.beginRe = new RegExp(`^${escapeRe(mark)} b(\\d+)$`);
    this.endRe = new RegExp(`^${escapeRe(mark)} e(\\d+) (\\d+)$`);
  }

  push(chunk: Buffer): void {
    this.feed(this.decoder.write(chunk));
  }

  end(): void {
    this.feed(this.decoder.end());
    if (this.partial) this.text(this.partial);
    this.partial = '';
  }

  private feed(s: string): void {
    const now = Date.now();
    let from = 0;
    for (;;) {
      const nl = s.indexOf('\n', from);
      if (nl < 0) break;
      const line = this.partial + s.slice(from, nl);
      this.partial = '';
      from = nl + 1;
      if (this.lineStart && line.startsWith(this.mark) && this.marker(line, now)) continue;
      this.text(line + '\n');
      this.lineStart = true;
    }
    const rest = s.slice(from);
    if (!rest) return;
    // A line cannot be a marker once it is longer than one; pass such text on instead of holding it.
    if (this.partial.length + rest.length > this.mark.length + 32) {
      this.text(this.partial + rest);
      this.partial = '';
      this.lineStart = false;
    } else this.partial += rest;
  }

  private marker(line: string, now: number): boolean {
    const b = this.beginRe.exec(line);
    if (b && Number(b[1]) === this.parts.length) {
      this.current = this.parts.length;
      this.parts.push({ text: '', began: now });
      return true;
    }
    const e = this.endRe.exec(line);
    if (e && Number(e[1]) === this.current) {
      const p = this.parts[this.current];
      // The framing printed a newline of its own before the end marker.
      if (p.text.endsWith('\n')) p.text = p.text.slice(0, -1);
      p.ended = now;
      p.code = Number(e[2]);
      this.current = -1;
      return true;
    }
    return false;
  }

  private text(s: string): void {
    if (this.current < 0) return; // outside any step: only the framing prints there
    const p = this.parts[this.current];
    p.text += s;
    if (p.text.length > MAX_STEP_OUTPUT * 2) p.text = p.text.slice(p.text.length - MAX_STEP_OUTPUT);
  }
}

/**
 * Runs several steps in one remote shell (one round trip, one timeout wrapper) while keeping each step's exit
 * code, output and duration apart. Step boundaries are printed with a random marker the steps cannot forge.
 * Durations are measured on the client from the arrival of each step's markers.
 */
export async function runSteps(
  conn: SshConnection,
  steps: Step[],
  // Without timeoutMs the host's ssh.command_timeout applies (see ExecOptions).
  opts: { timeoutMs?: number; signal?: AbortSignal; stdin?: string } = {},
): Promise<StepsResult> {
  const mark = `@@hd-${randomBytes(8).toString('hex')}@@`;
  const stream = new StepStream(mark);
  const res = await conn.exec(stepsScript(steps, mark), { ...opts, onStdout: (d) => stream.push(d) });
  stream.end();
  const finishedAt = Date.now();
  const reports: StepReport[] = [];
  const outputs: Record<string, string> = {};
  stream.parts.forEach((p, i) => {
    const s = steps[i];
    if (p.text.length > MAX_STEP_OUTPUT) p.text = p.text.slice(p.text.length - MAX_STEP_OUTPUT);
    const exitCode = p.code ?? null;
    outputs[s.name] = p.text;
    reports.push({
      name: s.name,
      command: s.display ?? firstLine(s.script),
      exitCode,
      durationMs: Math.max(0, (p.ended ?? finishedAt) - p.began),
      output: p.text.length > TAIL ? '…' + p.text.slice(p.text.length - TAIL) : p.text,
      ok: exitCode === 0,
    });
  });
  const failed = reports.find((r, i) => !r.ok && !steps[i].optional);
  if (!failed && reports.length < steps.length) {
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

function escapeRe(s: string): string {
  return s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}
