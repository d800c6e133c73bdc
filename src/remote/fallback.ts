/**
 * Environment variables the engine falls back to for a host whose config names no key or no host-key source,
 * after the action's `ssh-key` / `known-hosts` inputs. Kept apart from credentials.ts so config code can name
 * them without loading ssh2.
 */
export const FALLBACK_KEY_ENV = 'DEPLOY_SSH_KEY';
export const FALLBACK_KNOWN_HOSTS_ENV = 'DEPLOY_KNOWN_HOSTS';
