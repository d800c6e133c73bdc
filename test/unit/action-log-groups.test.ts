import { actionLogger } from '../../src/action/log-groups';
import type { DeployEvent } from '../../src/run/events';

/** The log as the runner shows it: ::group:: / ::endgroup:: lines around plain lines. */
function record() {
  const lines: string[] = [];
  const log = actionLogger({
    startGroup: (t) => lines.push(`::group::${t}`),
    endGroup: () => lines.push('::endgroup::'),
    info: (l) => lines.push(l),
    error: (m, p) => lines.push(`::error title=${p?.title}::${m}`),
  });
  return { lines, log };
}

const phase = (name: string, hosts: string[]): DeployEvent => ({ type: 'phase-start', phase: name, hosts });
const end = (name: string, ok = true): DeployEvent => ({
  type: 'phase-end',
  phase: name,
  ok,
  durationMs: 1000,
  error: ok ? undefined : { class: 'health-failed', message: 'site-007 unhealthy' },
});

describe('the action log', () => {
  it('one group per phase for a homelab, the lines the CLI prints inside it', () => {
    const { lines, log } = record();
    log.onEvent(phase('staging', ['thinkpad']));
    log.onEvent({
      type: 'host-end',
      phase: 'staging',
      host: 'thinkpad',
      ok: true,
      durationMs: 5,
      attempt: 1,
    });
    log.onEvent(end('staging'));
    log.close();
    expect(lines).toEqual([
      '::group::staging [thinkpad]',
      '▶ staging [thinkpad]',
      '  ✔ thinkpad ok (5ms)',
      '✔ staging done (1.0s)',
      '::endgroup::',
    ]);
  });

  it('a fleet stage: a group per wave with progress every 10 % and failures as they happen, no line per healthy target', () => {
    const { lines, log } = record();
    const targets = Array.from({ length: 100 }, (_, i) => `site-${i}`);
    log.onEvent(phase('sites', targets));
    log.onEvent({ type: 'wave-start', phase: 'sites', wave: 1, waves: 2, targets: 1 });
    log.onEvent({ type: 'host-end', phase: 'sites', host: 'site-0', ok: true, durationMs: 5, attempt: 1 });
    log.onEvent({
      type: 'wave-end',
      phase: 'sites',
      wave: 1,
      ok: 1,
      failed: 0,
      notStarted: 0,
      durationMs: 900,
    });
    log.onEvent({ type: 'wave-start', phase: 'sites', wave: 2, waves: 2, targets: 99 });
    for (let done = 1; done <= 99; done++) {
      log.onEvent({
        type: 'host-end',
        phase: 'sites',
        host: `site-${done}`,
        ok: done !== 7,
        durationMs: 5,
        attempt: 1,
        error: done === 7 ? { class: 'health-failed', message: 'unhealthy' } : undefined,
      });
      log.onEvent({
        type: 'wave-progress',
        phase: 'sites',
        wave: 2,
        done,
        failed: done >= 7 ? 1 : 0,
        running: Math.min(10, 99 - done),
        total: 99,
        perMinute: 600,
      });
    }
    log.onEvent({
      type: 'wave-end',
      phase: 'sites',
      wave: 2,
      ok: 98,
      failed: 1,
      notStarted: 0,
      durationMs: 9900,
    });
    log.onEvent(end('sites', false));
    log.close();
    const groups = lines.filter((l) => l.startsWith('::group::'));
    expect(groups).toEqual([
      '::group::sites [100 targets]',
      '::group::sites wave 1/2: 1 target (canary)',
      '::group::sites wave 2/2: 99 targets',
    ]);
    // Every group is closed, and no group is left open when the next one starts.
    let depth = 0;
    for (const l of lines) {
      if (l.startsWith('::group::')) expect(depth++).toBe(0);
      if (l === '::endgroup::') expect(--depth).toBe(0);
    }
    expect(depth).toBe(0);
    expect(lines.filter((l) => l.includes('✖ site-7'))).toHaveLength(1);
    expect(lines.some((l) => l.includes('site-8 ok'))).toBe(false);
    const progress = lines.filter((l) => l.startsWith('    sites wave 2:'));
    expect(progress.length).toBeGreaterThanOrEqual(9);
    expect(progress.length).toBeLessThanOrEqual(11);
    expect(lines).toContain(
      '::error title=homelab-deploy sites failed::sites: [health-failed] site-007 unhealthy',
    );
    expect(lines.length).toBeLessThan(40);
  });

  it('an escalation is an annotation too', () => {
    const { lines, log } = record();
    log.onEvent({
      type: 'escalation',
      escalation: {
        stage: 'sites',
        wave: 3,
        reason: '8 of 100 failed (8%), over 5%',
        rate: 0.08,
        classes: { unreachable: 8 },
        firstFailing: ['site-1', 'site-2'],
      },
    });
    expect(lines).toContain(
      '::error title=homelab-deploy escalation: the failure budget was passed::sites wave 3: 8 of 100 failed (8%), over 5%; first failing: site-1, site-2',
    );
  });
});
