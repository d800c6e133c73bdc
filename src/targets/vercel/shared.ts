import type { VercelTargetConfig } from '../../config/types';
import type { RunContext } from '../../run/context';
import { DEFAULT_REQUEST_TIMEOUT_MS, VercelApi } from './api';
import { DEFAULT_MAX_RATE_LIMIT_WAIT_MS, VercelPacing, type VercelPacingSettings } from './pacing';

/** Run-wide Vercel settings (`defaults.vercel` in the config): the plan's limits and the client's time limits. */
export interface VercelRunSettings extends VercelPacingSettings {
  requestTimeoutMs: number;
}

export const DEFAULT_VERCEL_RUN_SETTINGS: VercelRunSettings = {
  plan: 'pro',
  maxRateLimitWaitMs: DEFAULT_MAX_RATE_LIMIT_WAIT_MS,
  requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
};

/**
 * Hands every Vercel target of a run the client and pacing of its team and token, so that targets of one team
 * share one build limit, one daily count and one set of rate-limit gates, and targets of different teams do not
 * hold each other back.
 */
export class VercelClients {
  private readonly byKey = new Map<string, { api: VercelApi; pacing: VercelPacing }>();

  constructor(
    private readonly ctx: RunContext,
    private readonly settings: VercelRunSettings = DEFAULT_VERCEL_RUN_SETTINGS,
  ) {}

  for(config: Pick<VercelTargetConfig, 'apiUrl' | 'team' | 'tokenEnv'>): {
    api: VercelApi;
    pacing: VercelPacing;
  } {
    const key = JSON.stringify([config.apiUrl, config.team ?? '', config.tokenEnv]);
    let hit = this.byKey.get(key);
    if (!hit) {
      const label = `${config.team ? `team ${config.team}` : 'the personal account'} (token ${config.tokenEnv})`;
      const pacing = new VercelPacing(label, this.settings, {
        log: (message) =>
          this.ctx.emit({ type: 'log', level: 'warn', message: this.ctx.redactor.redact(message) }),
      });
      const api = new VercelApi(
        {
          apiUrl: config.apiUrl,
          team: config.team,
          tokenEnv: config.tokenEnv,
          requestTimeoutMs: this.settings.requestTimeoutMs,
        },
        { env: this.ctx.env, redactor: this.ctx.redactor, pacing, signal: this.ctx.signal },
      );
      hit = { api, pacing };
      this.byKey.set(key, hit);
    }
    return hit;
  }

  /** Requests sent by every client of the run. */
  get requests(): number {
    let n = 0;
    for (const { api } of this.byKey.values()) n += api.requests;
    return n;
  }

  get all(): { api: VercelApi; pacing: VercelPacing }[] {
    return [...this.byKey.values()];
  }
}
