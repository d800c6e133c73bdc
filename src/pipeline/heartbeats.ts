import type { Target } from '../targets/target';
import { Semaphore } from '../util/concurrency';

/**
 * Keeps each lock this run holds visibly alive from the moment it is taken, so no other run can call it stale
 * while we are still on other hosts' pre-flight. A lock found to be no longer ours (released by an operator or
 * taken over) stops the run: deploying on without the lock would race the new owner.
 */
export class Heartbeats {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<void>>();
  /** Targets whose beat is queued or on the wire: a slow beat is not stacked behind by the next one. */
  private readonly beating = new Set<string>();
  private readonly idleSlots: Semaphore;

  /**
   * `idleConnections` bounds the connections that beats of idle targets open at once, on top of the targets
   * being worked on: a wave of hundreds of finished targets whose locks are kept must not open hundreds of
   * connections each time their beats come round.
   */
  constructor(
    private readonly everyMs: number,
    private readonly onLost: (host: string) => void,
    idleConnections = 2,
  ) {
    this.idleSlots = new Semaphore(Math.max(1, idleConnections));
  }

  /**
   * `idle` says the target's part of the run is over while its lock is still held (a fleet that may yet roll it
   * back): each beat then opens a connection (within the idle bound) and gives it back, so held locks cost no
   * connections between beats.
   */
  start(host: Target, idle: () => boolean = () => false): void {
    if (this.timers.has(host.name)) return;
    const t = setInterval(() => {
      if (this.beating.has(host.name)) return;
      this.beating.add(host.name);
      const beat = this.beatOnce(host, idle)
        .finally(() => this.beating.delete(host.name))
        .then(
          (ours) => {
            if (!ours && this.timers.has(host.name)) {
              this.stop(host.name);
              this.onLost(host.name);
            }
          },
          // A missed beat is not a lost lock: the connection may recover, and stale_after spans several beats.
          () => undefined,
        );
      this.inFlight.add(beat);
      void beat.finally(() => this.inFlight.delete(beat));
    }, this.everyMs);
    t.unref();
    this.timers.set(host.name, t);
  }

  private async beatOnce(host: Target, idle: () => boolean): Promise<boolean> {
    if (!idle()) {
      try {
        return await host.heartbeat();
      } finally {
        // The target's work ended during the beat: the connection the beat used is not kept open.
        if (idle()) await host.close().catch(() => undefined);
      }
    }
    const release = await this.idleSlots.acquire();
    try {
      // The run may have stopped this target's beats while the beat waited for a slot: then it is not touched.
      if (!this.timers.has(host.name)) return true;
      try {
        return await host.heartbeat();
      } finally {
        await host.close().catch(() => undefined);
      }
    } finally {
      release();
    }
  }

  stop(host: string): void {
    clearInterval(this.timers.get(host));
    this.timers.delete(host);
  }

  /** Stops every beat and waits for those on the wire, so none is left behind on a connection about to close. */
  async stopAll(): Promise<void> {
    for (const name of [...this.timers.keys()]) this.stop(name);
    await Promise.all(this.inFlight);
  }
}

/**
 * How many beats of idle targets may be on the wire at once: a quarter of the widest stage, at least 2. A beat
 * is one short round trip, so even 1500 idle targets beating once a minute need only a few at a time.
 */
export function idleBeatConnections(stageParallels: readonly number[]): number {
  return Math.max(2, Math.ceil(Math.max(0, ...stageParallels) / 4));
}

/** Often enough that stale_after spans three beats; never more than once every 2 s or less than once a minute. */
export function heartbeatInterval(staleAfterMs: number): number {
  return Math.max(2000, Math.min(60_000, staleAfterMs / 3));
}
