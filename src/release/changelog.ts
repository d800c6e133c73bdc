import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeployError } from '../errors';
import { repoRoot } from '../git/ref';
import { writeFileAtomic } from '../targets/state/atomic-file';
import { countArgs, isShallowArgs, previousTagArgs, subjectsArgs } from './git-args';
import { gitComplaint, gitOutput, runGit } from './git';
import { validateSha, validateTagName } from './names';
import type { ChangelogSettings } from './types';

const WHERE = 'release.changelog';

export interface ChangelogEntry {
  tag: string;
  commit: string;
  releaseId: string;
  /** YYYY-MM-DD (UTC). */
  date: string;
  runUrl?: string;
  previousTag?: string;
  /** Newest first, at most the configured number. */
  subjects: string[];
  /** How many commits the range holds in all (more than `subjects.length` when the list was cut). */
  total: number;
}

/**
 * Each entry carries a machine-readable marker, so a re-run of the same release recognises its entry whatever
 * the heading looks like after someone edited it. The tag is URI-encoded: a ref name may contain "-->".
 */
export function entryMarker(tag: string, commit: string): string {
  return `<!-- homelab-deploy release tag=${encodeURIComponent(tag)} commit=${commit} -->`;
}

const MARKER_RE = /^<!-- homelab-deploy release tag=(\S+) commit=([0-9a-f]{40}) -->$/gm;

/** The commit the file's entry for `tag` names, if it has one. */
export function findEntry(text: string, tag: string): string | undefined {
  const want = encodeURIComponent(tag);
  for (const m of text.matchAll(MARKER_RE)) if (m[1] === want) return m[2];
  return undefined;
}

/** A commit subject as one list item: one line, and no "<" that could open HTML (or fake a marker). */
function item(subject: string): string {
  // eslint-disable-next-line no-control-regex
  const controls = /[\x00-\x08\x0b-\x1f\x7f]/g;
  const line = subject.replace(controls, '').replace(/\s+/g, ' ').trim();
  return `- ${line.replace(/</g, '&lt;') || '(no subject)'}`;
}

export function renderEntry(e: ChangelogEntry): string {
  const since = e.previousTag ? `changes since ${e.previousTag}` : 'first release';
  const run = e.runUrl ? ` · [deploy run](${e.runUrl})` : '';
  const items = e.subjects.map(item);
  if (e.total > e.subjects.length) items.push(`- … and ${e.total - e.subjects.length} earlier commits`);
  if (e.total === 0) items.push(`- no commits since ${e.previousTag ?? 'the previous release'}`);
  return [
    `## ${e.tag} (${e.date})`,
    '',
    entryMarker(e.tag, e.commit),
    `Commit \`${e.commit.slice(0, 12)}\`${run} · ${since}:`,
    '',
    ...items,
    '',
  ].join('\n');
}

/**
 * The file with the entry added: at the end (`bottom`), or before the first existing release heading (`top`,
 * newest first), keeping a title and introduction above it.
 */
export function insertEntry(existing: string, entry: string, position: 'bottom' | 'top'): string {
  if (existing.trim() === '') return entry;
  const text = existing.endsWith('\n') ? existing : existing + '\n';
  if (position === 'top') {
    const lines = text.split('\n');
    const first = lines.findIndex((l) => /^## /.test(l));
    if (first >= 0) {
      const before = lines.slice(0, first).join('\n');
      const after = lines.slice(first).join('\n');
      return `${before}${before ? '\n' : ''}${entry}\n${after}`;
    }
  }
  return `${text}${text.endsWith('\n\n') ? '' : '\n'}${entry}`;
}

export interface ChangelogRun {
  /** A directory in the repository whose history is listed. */
  dir: string;
  tag: string;
  commit: string;
  releaseId: string;
  date: string;
  runUrl?: string;
  /** Matches earlier release tags (from the name template: `v*`). */
  tagGlob: string;
  signal?: AbortSignal;
}

export interface ChangelogResult {
  file: string;
  written: boolean;
  previousTag?: string;
  commits: number;
}

/** The entry's facts from git: the previous release tag reachable from the commit and the subjects since. */
export async function collectEntry(settings: ChangelogSettings, run: ChangelogRun): Promise<ChangelogEntry> {
  const cwd = repoRoot(run.dir);
  const git = { cwd, signal: run.signal };
  const described = await runGit(previousTagArgs(run.commit, run.tagGlob, run.tag), git);
  if (described.cancelled) throw new DeployError('cancelled', `${WHERE}: cancelled`);
  let previousTag: string | undefined = described.stdout.trim() || undefined;
  if (described.code !== 0) {
    if (!/no names found|no tags can describe|cannot describe/i.test(described.stderr))
      throw new DeployError('command-failed', `${WHERE}: git describe failed: ${gitComplaint(described)}`);
    previousTag = undefined;
    // With no earlier tag in reach, a shallow clone cannot tell a first release from history it lacks.
    const shallow = (await gitOutput(isShallowArgs(), { ...git, what: WHERE })).trim() === 'true';
    if (shallow)
      throw new DeployError(
        'precondition',
        `${WHERE}: this clone is shallow and no earlier release tag (${run.tagGlob}) is in reach, so the commits since the last release are unknown: check out with fetch-depth: 0 (it also fetches the tags)`,
      );
  }
  if (previousTag !== undefined) validateTagName(previousTag, `${WHERE}: previous release tag`);
  const range = previousTag ? `refs/tags/${previousTag}..${run.commit}` : run.commit;
  const subjects = (await gitOutput(subjectsArgs(range, settings.maxEntries), { ...git, what: WHERE }))
    .split('\n')
    .filter((l, i, all) => i < all.length - 1 || l !== '');
  const total = previousTag
    ? Number(
        (await gitOutput(countArgs(`refs/tags/${previousTag}`, run.commit), { ...git, what: WHERE })).trim(),
      )
    : Number((await gitOutput(['rev-list', '--count', run.commit], { ...git, what: WHERE })).trim());
  return {
    tag: run.tag,
    commit: run.commit,
    releaseId: run.releaseId,
    date: run.date,
    runUrl: run.runUrl,
    previousTag,
    subjects: subjects.slice(0, settings.maxEntries),
    total,
  };
}

async function readExisting(file: string): Promise<{ text: string; mode: number; target: string }> {
  try {
    // A changelog that is a symlink is updated where it points, and stays a link.
    const target = await fs.promises.realpath(file);
    const st = await fs.promises.stat(target);
    if (!st.isFile()) throw new DeployError('config', `${WHERE}.file: ${file} is not a regular file`);
    return { text: await fs.promises.readFile(target, 'utf8'), mode: st.mode & 0o7777, target };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      if (err instanceof DeployError) throw err;
      throw new DeployError(
        'command-failed',
        `${WHERE}.file: reading ${file} failed: ${(err as Error).message}`,
      );
    }
    const dir = path.dirname(file);
    if (!fs.existsSync(dir))
      throw new DeployError(
        'config',
        `${WHERE}.file: the directory ${dir} does not exist; create it (the changelog file itself is created on the first release)`,
      );
    return { text: '', mode: 0o644, target: file };
  }
}

/**
 * Adds the release to the changelog, once: a file that already has this tag's entry (a re-run) is left alone,
 * one whose entry for the tag names another commit is an error. The file is replaced atomically (temp file in the
 * same directory, synced, renamed), so an interrupted write leaves the old file whole. It is not committed: the
 * deployed commit is what it is, and a commit made here could not be pushed to a protected branch; the report
 * names the file for the workflow to commit or upload.
 */
export async function appendChangelog(
  settings: ChangelogSettings,
  run: ChangelogRun,
): Promise<ChangelogResult> {
  validateTagName(run.tag, `${WHERE}: tag`);
  validateSha(run.commit, 'the released commit');
  const file = settings.file;
  const before = await readExisting(file);
  const recorded = findEntry(before.text, run.tag);
  if (recorded === run.commit) return { file, written: false, commits: 0 };
  if (recorded)
    throw new DeployError(
      'precondition',
      `${WHERE}: ${file} already has an entry for ${run.tag} on commit ${recorded}, not on ${run.commit}; a release entry is never rewritten`,
    );
  const entry = await collectEntry(settings, run);
  const next = insertEntry(before.text, renderEntry(entry), settings.position);
  try {
    await writeFileAtomic(before.target, next, before.mode);
  } catch (err) {
    throw new DeployError(
      'command-failed',
      `${WHERE}: writing ${file} failed (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); the file is unchanged`,
      { cause: err },
    );
  }
  return { file, written: true, previousTag: entry.previousTag, commits: entry.total };
}
