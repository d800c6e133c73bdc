import { renderTemplate, type TemplateVars } from '../util/template';
import { validateTagName } from './names';

/** Placeholders a tag name may use: all fixed by the commit and the version, so a re-run names the same tag. */
export const TAG_NAME_VARS = ['version', 'release', 'commit', 'short_commit', 'project'] as const;
/** A message may also say when and from where it was made. */
export const TAG_MESSAGE_VARS = [...TAG_NAME_VARS, 'tag', 'ref', 'date', 'run_url'] as const;

export const DEFAULT_TAG_NAME = 'v{{version}}';
export const DEFAULT_TAG_MESSAGE =
  'Release {{tag}} of {{project}}\n\nCommit {{commit}} (release {{release}}), deployed to production by {{run_url}}';

export interface TagValues {
  version: string;
  releaseId: string;
  commit: string;
  project: string;
  ref: string;
  /** YYYY-MM-DD (UTC). */
  date: string;
  runUrl?: string;
}

function vars(v: TagValues): TemplateVars {
  return {
    version: v.version,
    release: v.releaseId,
    commit: v.commit,
    short_commit: v.commit.slice(0, 12),
    project: v.project,
    ref: v.ref,
    date: v.date,
    run_url: v.runUrl || 'a run without a URL (the CLI)',
  };
}

export function renderTagName(template: string, v: TagValues): string {
  return validateTagName(renderTemplate(template, vars(v), 'release.tag.name'), 'release.tag.name');
}

export function renderTagMessage(template: string, v: TagValues & { tag: string }): string {
  return renderTemplate(template, { ...vars(v), tag: v.tag }, 'release.tag.message');
}

/** The glob matching every tag the template makes, for finding the previous release (`v{{version}}` → `v*`). */
export function tagGlob(template: string): string {
  return template.replace(/\{\{\s*[a-zA-Z0-9_.-]+\s*\}\}/g, '*').replace(/\*+/g, '*');
}
