import * as path from 'node:path';
import type { StateStoreSettings } from '../../config/types';
import { DeployError } from '../../errors';
import { DirStateStore } from './dir-store';
import type { StateStore } from './store';

/**
 * The StateStore a target's `state:` setting names. `target` is only for the error message. Stores are shared
 * per location, so every target of a run that keeps its state in one directory uses one store object.
 */
export function openStateStore(
  settings: StateStoreSettings,
  target: string,
  cache: Map<string, StateStore> = new Map(),
): StateStore {
  if (!path.isAbsolute(settings.path))
    throw new DeployError(
      'config',
      `targets.${target}.state.path: expected an absolute directory on the runner, got ${JSON.stringify(settings.path)}`,
    );
  const key = `dir:${path.resolve(settings.path)}`;
  let store = cache.get(key);
  if (!store) {
    store = new DirStateStore(path.resolve(settings.path));
    cache.set(key, store);
  }
  return store;
}
