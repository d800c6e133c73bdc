/** Where a host keeps its releases and bookkeeping, relative to the host's configured path. */
export const LAYOUT = {
  releases: 'releases',
  current: 'current',
  shared: 'shared',
  meta: '.homelab-deploy',
  lock: '.homelab-deploy/lock',
  lockOwner: '.homelab-deploy/lock/owner.json',
  releaseLog: '.homelab-deploy/releases.log',
  auditLog: '.homelab-deploy/audit.log',
  releaseMarker: '.release.json',
  rollbackPoint: (releaseId: string) => `.homelab-deploy/rollback-point-${releaseId}.json`,
} as const;

/** A release id is derived from the commit so every job of a multi-job workflow names the same release. */
export function releaseIdFor(commit: string): string {
  return commit.slice(0, 12);
}

export const RELEASE_ID_RE = /^[0-9a-f]{12}$/;
