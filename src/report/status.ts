import type { Report } from './types';

/** success and partial_success keep a job green; the rest fail it. */
export function isFailure(status: Report['status']): boolean {
  return status === 'failed' || status === 'aborted' || status === 'rolled_back';
}
