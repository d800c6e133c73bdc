import type { HostConfig } from '../../../config/types';
import { shExports, shQuote } from '../../../remote/quote';

/** Grace for the test command after TERM before KILL. */
export const TESTS_KILL_AFTER_S = 5;

/**
 * Runs a stage's tests on the host in the release directory: delete the old JUnit file, run the tests under their
 * own `timeout` (so a timeout still returns the output, and the remote processes are killed), then print the exit
 * code and the JUnit file's <testsuite(s)> opening tags after a marker. Only those tags are sent back: the JUnit
 * reader needs nothing else, and a large report would not fit the captured output. A JUnit path is relative to the
 * release directory, or absolute; tests inside a container must write it to a path mounted from the host.
 */
export function testsScript(o: {
  host: HostConfig;
  env: Record<string, string>;
  command: string;
  timeoutMs: number;
  junit?: string;
  mark: string;
}): string {
  const seconds = Math.max(1, Math.ceil(o.timeoutMs / 1000));
  const junit = o.junit ? shQuote(o.junit) : undefined;
  return [
    `cd ${shQuote(`${o.host.path}/current`)} || exit 1`,
    shExports(o.env),
    junit ? `rm -f -- ${junit}` : '',
    `t0=$(date +%s)`,
    `timeout -k ${TESTS_KILL_AFTER_S} ${seconds} sh -c ${shQuote(o.command)} </dev/null`,
    'rc=$?',
    // 124: timeout sent TERM; 137 after the limit: it had to send KILL.
    `if [ "$rc" -eq 124 ] || { [ "$rc" -eq 137 ] && [ $(( $(date +%s) - t0 )) -ge ${seconds} ]; }; then rc=timeout; fi`,
    `printf '\\n%s\\n' "${o.mark}rc=$rc"`,
    junit
      ? `if [ -f ${junit} ]; then printf '%s\\n' "${o.mark}junit"; tr '\\r\\n' '  ' < ${junit} | grep -o '<testsuites\\{0,1\\}\\([[:space:]][^>]*\\)\\{0,1\\}>'; fi`
      : '',
    'exit 0',
  ]
    .filter(Boolean)
    .join('\n');
}

/** Reads the marker trailer testsScript prints. */
export function parseTestsOutput(
  stdout: string,
  stderr: string,
  code: number | null,
  mark: string,
): { exitCode: number | null; output: string; timedOut: boolean; junitXml?: string } {
  const at = stdout.lastIndexOf(`\n${mark}rc=`);
  if (at < 0) return { exitCode: code === 0 ? null : code, output: stdout + stderr, timedOut: false };
  const trailer = stdout.slice(at + 1);
  const rc = /rc=(\w+)/.exec(trailer)?.[1];
  const j = trailer.indexOf(`${mark}junit\n`);
  return {
    exitCode: rc === undefined || rc === 'timeout' ? null : Number(rc),
    output: stdout.slice(0, at) + stderr,
    timedOut: rc === 'timeout',
    junitXml: j >= 0 ? trailer.slice(j + mark.length + 6) : undefined,
  };
}
