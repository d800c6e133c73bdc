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
  /** Written when a rollback failed: the host needs a human; `status` shows it until a deploy or rollback clears it. */
  needsAttention: '.homelab-deploy/needs-attention.json',
  releaseMarker: '.release.json',
  rollbackPoint: (releaseId: string) => `.homelab-deploy/rollback-point-${releaseId}.json`,
} as const;
