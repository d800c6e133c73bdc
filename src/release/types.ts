import type { ErrorClass } from '../errors';

/** The `release:` section after validation and defaulting. */
export interface ReleaseSettings {
  /** The stage whose success makes a release: the tag and the changelog entry follow it. */
  onStage: string;
  sync?: SyncSettings;
  tag?: TagSettings;
  changelog?: ChangelogSettings;
}

export interface SyncSettings {
  remote: string;
  branch: string;
  /** Fetch the branch before comparing; off for a runner without access to the remote. */
  fetch: boolean;
  fetchTimeoutMs: number;
  /** Runs deploying one of these stages are checked; empty = every run that deploys a stage. */
  stages: string[];
}

/**
 * Where the version in the tag name comes from. An explicit value (the CLI's `--release-version`, the action's
 * `release-version` input) always wins; `input` requires one.
 */
export type VersionSource =
  | { kind: 'input' }
  /** A file as committed at the deployed commit: `*.json` → its "version" field, anything else → its first line. */
  | { kind: 'file'; path: string; format: 'json' | 'text'; as: string };

export interface TagSettings {
  /** Template; placeholders: version, release, commit, short_commit, date, project. */
  name: string;
  version: VersionSource;
  /** Template; the name's placeholders and tag, ref, run_url. */
  message: string;
  /** CLI path: push the tag to `remote` after creating it. */
  push: boolean;
  remote: string;
  timeoutMs: number;
}

export interface ChangelogSettings {
  /** Absolute path of the Markdown file. */
  file: string;
  /** `bottom`: appended at the end; `top`: before the first release entry (newest first). */
  position: 'bottom' | 'top';
  /** Commit subjects listed at most; the rest are counted. */
  maxEntries: number;
}

export interface ReleaseErrorInfo {
  class: ErrorClass;
  message: string;
}

export interface SyncReport {
  with: string;
  tip: string;
  commit: string;
  /** Commits the deployed commit has beyond the branch tip. */
  ahead: number;
  fetched: boolean;
}

export interface TagReport {
  name: string;
  version: string;
  commit: string;
  /** `git`: created by git on the runner (and pushed when `pushed`); `github-api`: through the REST API. */
  via: 'git' | 'github-api';
  ok: boolean;
  /** False when the tag already named this commit (a re-run). */
  created: boolean;
  pushed?: boolean;
  error?: ReleaseErrorInfo;
}

export interface ChangelogReport {
  file: string;
  ok: boolean;
  /** False when the file already had this tag's entry. */
  written: boolean;
  previousTag?: string;
  commits: number;
  error?: ReleaseErrorInfo;
}

/**
 * What the release steps did after the deploy. They never change the deploy's status: production is live and
 * passed its checks, so a failed tag is reported here (status `failed`) and left to be redone, not rolled back.
 */
export interface ReleaseReport {
  status: 'ok' | 'failed' | 'skipped';
  /** Why the steps did not run (the release stage did not succeed in this run, or was not part of it). */
  reason?: string;
  sync?: SyncReport;
  tag?: TagReport;
  changelog?: ChangelogReport;
  durationMs: number;
}
