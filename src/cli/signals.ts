import type { CliIo } from './io';

/**
 * Runs `work` with SIGINT/SIGTERM turned into a cancel: the first signal aborts the run cleanly (no new steps,
 * remote commands killed, locks released); a second one means "now" and exits with 130/143, even if cleanup is
 * still going. The runner gives ~7.5 s between SIGINT and SIGTERM, a person presses Ctrl-C twice.
 */
export async function withSignals<T>(io: CliIo, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const signals = io.signals ?? process;
  const exit = io.exit ?? ((code: number) => process.exit(code));
  let received = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    received++;
    if (received === 1) {
      io.err.write(`\n${sig}: stopping: no new steps, remote commands killed, locks released\n`);
      controller.abort();
      return;
    }
    io.err.write(
      `\n${sig} again: exiting now; locks this run still holds go stale after lock.stale_after (or: homelab-deploy lock release)\n`,
    );
    exit(sig === 'SIGINT' ? 130 : 143);
  };
  signals.on('SIGINT', onSignal);
  signals.on('SIGTERM', onSignal);
  try {
    return await work(controller.signal);
  } finally {
    signals.removeListener('SIGINT', onSignal);
    signals.removeListener('SIGTERM', onSignal);
  }
}
