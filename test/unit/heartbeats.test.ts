import { Heartbeats, idleBeatConnections } from '../../src/pipeline/heartbeats';
import type { Target } from '../../src/targets/target';

/**
 * The beat scheduler on its own: targets here are only what Heartbeats calls (heartbeat, close), each beat a
 * timed promise, so the test can see how many beats are on the wire at once. Real beats over SSH are covered by
 * the fleet tests (test/integration/fleet-rollout.test.ts, "bounded resources").
 */
function fleet(n: number, beatMs: number) {
  let open = 0;
  let maxOpen = 0;
  const beats = new Map<string, number>();
  const closes = new Map<string, number>();
  const pending = new Map<string, number>();
  let maxPendingPerTarget = 0;
  const targets = Array.from({ length: n }, (_, i) => {
    const name = `t${i}`;
    return {
      name,
      heartbeat: async () => {
        open++;
        maxOpen = Math.max(maxOpen, open);
        pending.set(name, (pending.get(name) ?? 0) + 1);
        maxPendingPerTarget = Math.max(maxPendingPerTarget, pending.get(name)!);
        await new Promise((r) => setTimeout(r, beatMs));
        pending.set(name, pending.get(name)! - 1);
        open--;
        beats.set(name, (beats.get(name) ?? 0) + 1);
        return true;
      },
      close: async () => {
        closes.set(name, (closes.get(name) ?? 0) + 1);
      },
    } as unknown as Target;
  });
  return {
    targets,
    beats,
    closes,
    maxOpen: () => maxOpen,
    open: () => open,
    maxPendingPerTarget: () => maxPendingPerTarget,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('heartbeats', () => {
  it('beats of idle targets open at most the idle bound of connections at once, and each closes its own', async () => {
    const f = fleet(12, 30);
    const hb = new Heartbeats(20, () => undefined, 3);
    for (const t of f.targets) hb.start(t, () => true);
    await sleep(600);
    await hb.stopAll();
    expect(f.maxOpen()).toBe(3);
    expect(f.open()).toBe(0);
    // Every target was beaten, and a beat waiting for a slot was not stacked up by the next interval.
    for (const t of f.targets) expect([t.name, (f.beats.get(t.name) ?? 0) > 0]).toEqual([t.name, true]);
    expect(f.maxPendingPerTarget()).toBe(1);
    for (const t of f.targets) expect(f.closes.get(t.name)).toBe(f.beats.get(t.name));
  });

  it('targets still at work beat on their own connection, outside the idle bound, and keep it', async () => {
    const f = fleet(6, 30);
    const hb = new Heartbeats(20, () => undefined, 1);
    for (const t of f.targets) hb.start(t, () => false);
    await sleep(200);
    await hb.stopAll();
    expect(f.maxOpen()).toBeGreaterThan(1);
    expect(f.closes.size).toBe(0);
  });

  it('a lock found in other hands stops that target’s beats and reports it once', async () => {
    const lost: string[] = [];
    const hb = new Heartbeats(10, (h) => lost.push(h), 2);
    const target = {
      name: 'vps',
      heartbeat: async () => false,
      close: async () => undefined,
    } as unknown as Target;
    hb.start(target, () => true);
    await sleep(120);
    await hb.stopAll();
    expect(lost).toEqual(['vps']);
  });

  it('the idle bound is a quarter of the widest stage, at least 2', () => {
    expect(idleBeatConnections([])).toBe(2);
    expect(idleBeatConnections([1, 8])).toBe(2);
    expect(idleBeatConnections([10, 100])).toBe(25);
    expect(idleBeatConnections([50])).toBe(13);
  });
});
