import { loadConfig } from '../config/load';
import type { Config } from '../config/types';
import { buildPlan, parsePhases, type Plan } from './plan';

export interface Prepared {
  config: Config;
  phases: string[];
  plan: Plan;
}

/**
 * Config → plan, with no network: shared by `plan`, `validate`, dry runs and real runs. It lives apart from the
 * engine so the commands that only read a config load none of the code that deploys (SSH, HTTP clients).
 */
export function prepare(configPath: string, phase: string, targets?: string[]): Prepared {
  return prepareConfig(loadConfig(configPath), phase, targets);
}

/** The same for a config already loaded (a command that checked its options against it first). */
export function prepareConfig(config: Config, phase: string, targets?: string[]): Prepared {
  const phases = parsePhases(config, phase);
  return { config, phases, plan: buildPlan(config, phases, targets) };
}
