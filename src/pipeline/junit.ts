export interface JunitCounts {
  tests: number;
  passed: number;
  failures: number;
  errors: number;
  skipped: number;
}

const attr = (tag: string, name: string): number =>
  Number(new RegExp(`\\b${name}="(\\d+)"`).exec(tag)?.[1] ?? 0);

/**
 * Counts from a JUnit XML report (pytest, jest-junit, go-junit-report...). The <testsuites> totals are used when
 * present; otherwise the <testsuite> elements are summed. No XML library: only the attributes are needed.
 */
export function parseJunit(xml: string): JunitCounts | undefined {
  const root = /<testsuites\b[^>]*>/.exec(xml)?.[0];
  const suites = [...xml.matchAll(/<testsuite\b[^>]*>/g)].map((m) => m[0]);
  const tags = root && /\btests="/.test(root) ? [root] : suites;
  if (tags.length === 0) return undefined;
  const sum = (n: string) => tags.reduce((acc, t) => acc + attr(t, n), 0);
  const tests = sum('tests');
  const failures = sum('failures');
  const errors = sum('errors');
  const skipped = sum('skipped') + sum('disabled');
  return { tests, failures, errors, skipped, passed: Math.max(0, tests - failures - errors - skipped) };
}
