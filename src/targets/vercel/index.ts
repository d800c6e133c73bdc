export { VercelApi, DEFAULT_REQUEST_TIMEOUT_MS, type VercelApiSettings, type VercelApiDeps } from './api';
export {
  estimate,
  resolveLimits,
  PLAN_LIMITS,
  VercelPacing,
  DEFAULT_MAX_RATE_LIMIT_WAIT_MS,
  type Estimate,
  type EstimateInput,
  type VercelLimits,
  type VercelPacingSettings,
  type VercelPlan,
} from './pacing';
export { VercelClients, DEFAULT_VERCEL_RUN_SETTINGS, type VercelRunSettings } from './shared';
export {
  createVercelTarget,
  VercelTarget,
  DEFAULT_VERCEL_TIMINGS,
  type VercelTargetShared,
  type VercelTimings,
} from './target';
export { QUOTA } from './errors';
