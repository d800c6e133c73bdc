/**
 * Target selection, shared by stages in the config, `--targets` and `plan`: a selector is a name, a glob over
 * names (`site-*`, `web-?`), or label conditions (`region=eu`, `tier!=canary`, `region=eu,tier=web` for both;
 * values may be globs). A list of selectors selects every target one of them matches, in the config's order.
 */

export interface Selectable {
  name: string;
  labels: Record<string, string>;
}

const GLOB = /[*?]/;

function globRe(glob: string): RegExp {
  return new RegExp(
    '^' +
      glob
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.') +
      '$',
  );
}

/** A compiled selector: one test per target, no parsing in the loop. */
export function compileSelector(selector: string): (t: Selectable) => boolean {
  const parts = selector.split(',').map((p) => p.trim());
  const tests = parts.map((part): ((t: Selectable) => boolean) => {
    const m = /^([^!=]+)(!?=)(.*)$/.exec(part);
    if (!m) {
      if (!GLOB.test(part)) return (t) => t.name === part;
      const re = globRe(part);
      return (t) => re.test(t.name);
    }
    const [, key, op, value] = m;
    const re = GLOB.test(value) ? globRe(value) : undefined;
    const eq = (t: Selectable) => {
      const v = t.labels[key];
      return v !== undefined && (re ? re.test(v) : v === value);
    };
    return op === '=' ? eq : (t) => !eq(t);
  });
  return (t) => tests.every((f) => f(t));
}

/** True when a selector can match more than one target (a glob or a label condition), not a plain name. */
export function isPattern(selector: string): boolean {
  return GLOB.test(selector) || selector.includes('=') || selector.includes(',');
}

/**
 * The targets `selectors` pick, in `all`'s order, and the selectors that picked nothing (a plain name that does
 * not exist, a label nobody has): callers report those, they are almost always typos.
 */
export function selectTargets(
  selectors: string[],
  all: Selectable[],
): { names: string[]; unmatched: string[] } {
  // Plain names are looked up; only patterns are tested against every target (a stage naming 1000 hosts one by
  // one would otherwise test a million pairs).
  const plain = new Map<string, string[]>(); // name → the selectors naming it
  const patterns: { s: string; test: (t: Selectable) => boolean }[] = [];
  for (const s of selectors) {
    if (isPattern(s)) patterns.push({ s, test: compileSelector(s) });
    else plain.set(s.trim(), [...(plain.get(s.trim()) ?? []), s]);
  }
  const hit = new Set<string>();
  const used = new Set<string>();
  for (const t of all) {
    const named = plain.get(t.name);
    if (named) {
      hit.add(t.name);
      for (const s of named) used.add(s);
    }
    for (const c of patterns)
      if (c.test(t)) {
        hit.add(t.name);
        used.add(c.s);
      }
  }
  return {
    names: all.filter((t) => hit.has(t.name)).map((t) => t.name),
    unmatched: selectors.filter((s) => !used.has(s)),
  };
}
