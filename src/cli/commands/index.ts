import type { Command } from '../command';
import { completeNames, completionCommand } from './completion';
import { history } from './history';
import { mergeReportsCommand } from './merge-reports';
import { plan } from './plan';
import { run } from './run';
import { lockRelease, lockStatus, status } from './status';
import { validate } from './validate';

/** Every command, in the order help lists them. */
export const COMMANDS: Command[] = [
  run,
  plan,
  validate,
  status,
  lockStatus,
  lockRelease,
  history,
  mergeReportsCommand,
  completionCommand(() => COMMANDS),
  completeNames,
];
