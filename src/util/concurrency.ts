/** Counting semaphore: bounds channels per SSH connection and hosts in flight per phase. */
export class Semaphore {
  private waiters: { wake: () => void; priority: boolean }[] = [];
  private free: number;

  constructor(readonly size: number) {
    this.free = size;
  }

  /** Slots taken right now (for tests and diagnostics). */
  get inUse(): number {
    return this.size - this.free;
  }

  /**
   * Waits for a slot and returns its release function (safe to call twice).
   * `priority` puts the caller ahead of every ordinary waiter: a kill must not queue behind the commands it is
   * meant to stop. An aborted `signal` stops the wait with the signal's reason and takes no slot.
   */
  async acquire(opts: { priority?: boolean; signal?: AbortSignal } = {}): Promise<() => void> {
    if (opts.signal?.aborted) throw abortReason(opts.signal);
    if (this.free > 0) {
      this.free--;
    } else {
      await new Promise<void>((resolve, reject) => {
        const waiter = {
          priority: opts.priority === true,
          wake: () => {
            opts.signal?.removeEventListener('abort', onAbort);
            resolve();
          },
        };
        const onAbort = () => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(abortReason(opts.signal as AbortSignal));
        };
        opts.signal?.addEventListener('abort', onAbort, { once: true });
        if (waiter.priority) {
          // Behind earlier priority waiters, ahead of every ordinary one.
          const at = this.waiters.findIndex((w) => !w.priority);
          this.waiters.splice(at < 0 ? this.waiters.length : at, 0, waiter);
        } else this.waiters.push(waiter);
      });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next.wake();
      else this.free++;
    };
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new Error('aborted');
}

/** Runs fn over items with at most `limit` in flight; results keep input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return results;
}
