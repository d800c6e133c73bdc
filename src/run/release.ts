/** A release id is derived from the commit so every job of a multi-job workflow names the same release. */
export function releaseIdFor(commit: string): string {
  return commit.slice(0, 12);
}

export const RELEASE_ID_RE = /^[0-9a-f]{12}$/;
