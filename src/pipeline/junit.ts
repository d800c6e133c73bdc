import { XMLParser, XMLValidator } from 'fast-xml-parser';

export interface JunitCounts {
  tests: number;
  passed: number;
  failures: number;
  errors: number;
  skipped: number;
}

type Totals = Omit<JunitCounts, 'passed'>;
type XmlNode = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseAttributeValue: false,
  parseTagValue: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  // Reports can be megabytes of test output; only the structure is read.
  stopNodes: ['*.system-out', '*.system-err', '*.failure', '*.error', '*.skipped'],
  isArray: (name) => name === 'testsuite' || name === 'testcase',
});

const ZERO: Totals = { tests: 0, failures: 0, errors: 0, skipped: 0 };
const add = (a: Totals, b: Totals): Totals => ({
  tests: a.tests + b.tests,
  failures: a.failures + b.failures,
  errors: a.errors + b.errors,
  skipped: a.skipped + b.skipped,
});

/** A count attribute as a number; undefined when absent or not a count (GitHub-style "N/A", empty). */
function count(el: XmlNode, name: string): number | undefined {
  const v = el[`@${name}`];
  if (typeof v !== 'string' || !/^\s*\d+(\.0+)?\s*$/.test(v)) return undefined;
  return Number(v);
}

/** An element's own totals, when it states them (`tests` at least; absent failures/errors/skipped mean 0). */
function stated(el: XmlNode): Totals | undefined {
  const tests = count(el, 'tests');
  if (tests === undefined) return undefined;
  return {
    tests,
    failures: count(el, 'failures') ?? 0,
    errors: count(el, 'errors') ?? 0,
    skipped: (count(el, 'skipped') ?? 0) + (count(el, 'disabled') ?? 0),
  };
}

const children = (el: XmlNode, name: string): XmlNode[] =>
  ((el[name] as unknown[] | undefined) ?? []).map((c) => (typeof c === 'object' && c ? (c as XmlNode) : {}));

/**
 * A suite's totals: its own attributes when it has them (they already include any nested suites, so those are
 * not counted again), else the sum of its nested suites and its test cases.
 */
function suiteTotals(suite: XmlNode): Totals {
  const own = stated(suite);
  if (own) return own;
  let sum = children(suite, 'testsuite').reduce<Totals>((acc, s) => add(acc, suiteTotals(s)), ZERO);
  for (const tc of children(suite, 'testcase')) {
    sum = add(sum, {
      tests: 1,
      failures: 'failure' in tc ? 1 : 0,
      errors: 'error' in tc ? 1 : 0,
      skipped: 'skipped' in tc ? 1 : 0,
    });
  }
  return sum;
}

function fromDocument(doc: XmlNode): Totals | undefined {
  const root = doc.testsuites as XmlNode | '' | undefined;
  if (root !== undefined) {
    const el = typeof root === 'object' ? root : {};
    return stated(el) ?? children(el, 'testsuite').reduce<Totals>((acc, s) => add(acc, suiteTotals(s)), ZERO);
  }
  const suites = children(doc, 'testsuite');
  if (!suites.length) return undefined;
  return suites.reduce<Totals>((acc, s) => add(acc, suiteTotals(s)), ZERO);
}

/** The attributes of one opening tag, read by the XML parser (either quote, entities decoded). */
function attributesOf(name: string, rest: string): XmlNode {
  const parsed = parser.parse(`<${name}${rest.replace(/\/\s*$/, '')}/>`) as XmlNode;
  const raw = parsed[name];
  const el: unknown = Array.isArray(raw) ? raw[0] : raw;
  return typeof el === 'object' && el ? (el as XmlNode) : {};
}

/**
 * The <testsuite(s)> tags alone, as a test run on a host ships them back (see tests-runner.ts): no test cases,
 * and closing tags only if the host sent them. With closing tags the nesting is known, and a suite inside one
 * that stated its totals is not counted again; without them every suite is taken as a sibling, which is how
 * pytest, jest-junit and go-junit-report write their files.
 */
function fromTags(text: string): Totals | undefined {
  const tags = [...text.matchAll(/<(\/?)(testsuites?)\b((?:[^>"']|"[^"]*"|'[^']*')*)>/g)];
  const nested = tags.some(([, closing]) => closing);
  // Per open <testsuite>: whether it, or a suite around it, has been counted.
  const covered: boolean[] = [];
  let total: Totals | undefined;
  for (const [, closing, name, rest] of tags) {
    if (closing) {
      if (name === 'testsuite') covered.pop();
      continue;
    }
    const own = stated(attributesOf(name, rest));
    if (name === 'testsuites') {
      if (own) return own;
      continue;
    }
    const inside = covered[covered.length - 1] ?? false;
    if (own && !inside) total = add(total ?? ZERO, own);
    if (nested && !rest.trimEnd().endsWith('/')) covered.push(inside || own !== undefined);
  }
  return total;
}

/**
 * Counts from a JUnit XML report (pytest, jest-junit, go-junit-report, Maven Surefire...): the <testsuites> totals
 * when present, else the outermost <testsuite> elements' totals, else the test cases themselves. Attributes may use
 * either quote. Undefined when the text holds no test suite at all.
 */
export function parseJunit(xml: string): JunitCounts | undefined {
  let totals: Totals | undefined;
  if (XMLValidator.validate(xml) === true) {
    try {
      totals = fromDocument(parser.parse(xml) as XmlNode);
    } catch {
      totals = undefined;
    }
  }
  totals ??= fromTags(xml);
  if (!totals) return undefined;
  return { ...totals, passed: Math.max(0, totals.tests - totals.failures - totals.errors - totals.skipped) };
}
