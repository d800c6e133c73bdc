import * as path from 'node:path';
import { z } from 'zod';
import { parseDuration } from '../util/duration';
import { placeholderNames, renderTemplate } from '../util/template';
import { parseRemoteBranch, refNameProblem, remoteNameProblem } from './names';
import { DEFAULT_TAG_MESSAGE, DEFAULT_TAG_NAME, TAG_MESSAGE_VARS, TAG_NAME_VARS } from './tag-templates';
import type { ReleaseSettings, VersionSource } from './types';

/**
 * The `release:` section of the config: the up-to-date check before deploying, and the tag and changelog entry
 * after a successful production stage. This module depends on nothing above util so the config schema can embed
 * it.
 */

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === undefined || ms <= 0) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a duration such as "30s" or "2m", got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }
  return ms;
});

const stageName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected a stage name');

export const releaseSchema = z.strictObject({
  /** The stage after which the release is tagged and written to the changelog; default production, else the last. */
  on_stage: stageName.optional(),
  sync: z
    .strictObject({
      with: z
        .string()
        .superRefine((v, ctx) => {
          const r = parseRemoteBranch(v);
          if (typeof r === 'string') ctx.addIssue({ code: 'custom', message: r });
        })
        .describe('<remote>/<branch> whose tip the deployed commit must contain, e.g. origin/main'),
      fetch: z.boolean().optional().describe('fetch the branch first (default true)'),
      fetch_timeout: duration.optional(),
      stages: z.array(stageName).min(1).optional().describe('check only runs deploying these stages'),
    })
    .optional(),
  tag: z
    .strictObject({
      name: z.string().min(1).optional().describe('template, default v{{version}}'),
      version_from: z
        .string()
        .min(1)
        .optional()
        .describe('"input", or a file relative to the config: package.json (default), VERSION, ...'),
      message: z.string().min(1).optional(),
      push: z.boolean().optional().describe('CLI: push the tag to the remote (default true)'),
      remote: z
        .string()
        .superRefine((v, ctx) => {
          const why = remoteNameProblem(v);
          if (why) ctx.addIssue({ code: 'custom', message: why });
        })
        .optional(),
      timeout: duration.optional(),
    })
    .optional(),
  changelog: z
    .strictObject({
      file: z
        .string()
        .min(1)
        .refine((v) => !/[\0\r\n]/.test(v), 'a file name cannot contain a line break')
        .describe('Markdown file, relative to the config or absolute'),
      position: z.enum(['bottom', 'top']).optional(),
      max_entries: z.number().int().min(1).max(10_000).optional(),
    })
    .optional(),
});
export type ReleaseInput = z.infer<typeof releaseSchema>;

export const RELEASE_DEFAULTS = {
  fetchTimeoutMs: 60_000,
  tagTimeoutMs: 60_000,
  remote: 'origin',
  versionFrom: 'package.json',
  maxEntries: 200,
} as const;

/** Same shape as config/errors.ts's ConfigIssue, which the caller places in the file. */
export interface ReleaseIssue {
  path: string;
  message: string;
}

function versionSource(raw: string, dir: string): VersionSource {
  if (raw === 'input') return { kind: 'input' };
  return {
    kind: 'file',
    path: path.resolve(dir, raw),
    format: /\.json$/i.test(raw) ? 'json' : 'text',
    as: raw,
  };
}

/**
 * Defaults and cross-checks: stages named must exist, templates may only use known placeholders and must make
 * valid tag names, a changelog needs a tag (its entries are headed by the tag and list the commits since the
 * previous one). Problems are pushed onto `issues`, each under its key.
 */
export function resolveRelease(
  input: ReleaseInput | undefined,
  dir: string,
  stageNames: string[],
  issues: ReleaseIssue[],
): ReleaseSettings | undefined {
  if (!input) return undefined;
  const known = `stages are ${stageNames.join(', ') || 'none'}`;
  const onStage =
    input.on_stage ?? (stageNames.includes('production') ? 'production' : stageNames[stageNames.length - 1]);
  if (input.on_stage !== undefined && !stageNames.includes(input.on_stage))
    issues.push({
      path: 'release.on_stage',
      message: `no stage ${JSON.stringify(input.on_stage)}; ${known}`,
    });
  if (onStage === undefined && (input.tag || input.changelog))
    issues.push({ path: 'release.on_stage', message: 'the config has no stage to release after' });

  let sync: ReleaseSettings['sync'];
  if (input.sync) {
    const rb = parseRemoteBranch(input.sync.with);
    (input.sync.stages ?? []).forEach((s, i) => {
      if (!stageNames.includes(s))
        issues.push({ path: `release.sync.stages.${i}`, message: `no stage ${JSON.stringify(s)}; ${known}` });
    });
    if (typeof rb !== 'string')
      sync = {
        remote: rb.remote,
        branch: rb.branch,
        fetch: input.sync.fetch ?? true,
        fetchTimeoutMs: input.sync.fetch_timeout ?? RELEASE_DEFAULTS.fetchTimeoutMs,
        stages: input.sync.stages ?? [],
      };
  }

  let tag: ReleaseSettings['tag'];
  if (input.tag) {
    const name = input.tag.name ?? DEFAULT_TAG_NAME;
    const message = input.tag.message ?? DEFAULT_TAG_MESSAGE;
    const nameProblems = templateIssues(name, TAG_NAME_VARS, 'name');
    nameProblems.forEach((m) => issues.push({ path: 'release.tag.name', message: m }));
    if (nameProblems.length === 0) {
      const why = sampleNameProblem(name);
      if (why) issues.push({ path: 'release.tag.name', message: why });
      if (!placeholderNames(name).some((n) => n === 'version' || n === 'release' || n.endsWith('commit')))
        issues.push({
          path: 'release.tag.name',
          message: `${JSON.stringify(name)} names every release alike; use {{version}} (or {{release}}, {{short_commit}})`,
        });
    }
    templateIssues(message, TAG_MESSAGE_VARS, 'message').forEach((m) =>
      issues.push({ path: 'release.tag.message', message: m }),
    );
    tag = {
      name,
      version: versionSource(input.tag.version_from ?? RELEASE_DEFAULTS.versionFrom, dir),
      message,
      push: input.tag.push ?? true,
      remote: input.tag.remote ?? RELEASE_DEFAULTS.remote,
      timeoutMs: input.tag.timeout ?? RELEASE_DEFAULTS.tagTimeoutMs,
    };
  }

  let changelog: ReleaseSettings['changelog'];
  if (input.changelog) {
    if (!input.tag)
      issues.push({
        path: 'release.changelog',
        message:
          'a changelog needs release.tag: each entry is headed by the release tag and lists the commits since the previous one',
      });
    changelog = {
      file: path.resolve(dir, input.changelog.file),
      position: input.changelog.position ?? 'bottom',
      maxEntries: input.changelog.max_entries ?? RELEASE_DEFAULTS.maxEntries,
    };
  }
  return { onStage: onStage ?? '', sync, tag, changelog };
}

function templateIssues(template: string, allowed: readonly string[], what: string): string[] {
  return placeholderNames(template)
    .filter((n) => !allowed.includes(n))
    .map(
      (n) =>
        `unknown placeholder {{${n}}}; a tag ${what} can use ${allowed.map((a) => `{{${a}}}`).join(', ')}`,
    );
}

/** Whether the template's fixed text can make a valid tag name, tried with a typical version. */
function sampleNameProblem(template: string): string | undefined {
  const sample = renderTemplate(
    template,
    {
      version: '1.2.3',
      release: '0123456789ab',
      commit: '0'.repeat(40),
      short_commit: '0'.repeat(12),
      project: 'app',
    },
    'release.tag.name',
  );
  const why = refNameProblem(sample);
  return why && `it makes tag names such as ${JSON.stringify(sample)}, which git refuses: ${why}`;
}
