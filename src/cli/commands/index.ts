import type { Command } from '../command';
import { completeNames, completionCommand } from './completion';
import { history } from './history';
import { mergeReportsCommand } from './merge-reports';
import { plan } from './plan';
import { releases } from './releases';
import { report } from './report';
import { rollback } from './rollback';
import { run } from './run';
import { lockRelease, lockStatus, status } from './status';
import { validate } from './validate';

/** Every command, in the order help lists them. */
export const COMMANDS: Command[] = [
  run,
  plan,
  validate,
  rollback,
  releases,
  status,
  lockStatus,
  lockRelease,
  history,
  report,
  mergeReportsCommand,
  completionCommand(() => COMMANDS),
  completeNames,
];
