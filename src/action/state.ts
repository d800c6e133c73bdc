import * as core from '@actions/core';

/**
 * The post step runs as a separate process; what it needs from main travels through GITHUB_STATE.
 * `isPost` is recorded at import time, as actions/checkout does, so the same bundle serves main and post.
 */
export const isPost = !!process.env['STATE_isPost'];
if (!isPost) core.saveState('isPost', 'true');

type Key = 'runToken' | 'configPath' | 'lockedHosts' | 'openStatuses' | 'finished';

export const state = {
  save(key: Key, value: string): void {
    core.saveState(key, value);
  },
  get(key: Key): string {
    return core.getState(key);
  },
};
