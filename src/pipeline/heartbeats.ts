import type { Target } from '../targets/target';

/**
 * Keeps each lock this run holds visibly alive from the moment it is taken, so no other run can call it stale
 * while we are still on other hosts' pre-flight. A lock found to be no longer ours (released by an operator or
 * taken over) stops the run: deploying on without the lock would race the new owner.
 */
export class Heartbeats {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly everyMs: number,
    private readonly onLost: (host: string) => void,
  ) {}

  /**
   * `idle` says the target's part of the run is over while its lock is still held (a fleet that may yet roll it
   * back): each beat then gives its connection back, so held locks cost no connections between beats.
   */
  start(host: Target, idle: () => boolean = () => false): void {
    if (this.timers.has(host.name)) return;
    const t = setInterval(() => {
      const beat = host
        .heartbeat()
        .finally(() => (idle() ? host.close().catch(() => undefined) : undefined))
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

/** Often enough that stale_after spans three beats; never more than once every 2 s or less than once a minute. */
export function heartbeatInterval(staleAfterMs: number): number {
  return Math.max(2000, Math.min(60_000, staleAfterMs / 3));
}
