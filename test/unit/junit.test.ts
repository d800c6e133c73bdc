import { parseJunit } from '../../src/pipeline/junit';

const counts = (tests: number, failures = 0, errors = 0, skipped = 0) => ({
  tests,
  failures,
  errors,
  skipped,
  passed: tests - failures - errors - skipped,
});

describe('parseJunit: a whole report file (the runner reads it from disk)', () => {
  it('a <testsuites> with totals: the totals, not the sum of its suites again', () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="jest tests" tests="7" failures="2" errors="0" time="1.2">
  <testsuite name="api" tests="4" failures="1" errors="0" skipped="0"><testcase name="a"/></testsuite>
  <testsuite name="ui" tests="3" failures="1" errors="0" skipped="0"><testcase name="b"/></testsuite>
</testsuites>`;
    expect(parseJunit(xml)).toEqual(counts(7, 2));
  });

  it('nested <testsuite> elements are counted once: the outer suite states what it holds', () => {
    const xml = `<testsuites>
  <testsuite name="all" tests="5" failures="1" errors="1" skipped="1">
    <testsuite name="unit" tests="3" failures="1" errors="0" skipped="1"><testcase name="u"/></testsuite>
    <testsuite name="integration" tests="2" failures="0" errors="1" skipped="0"><testcase name="i"/></testsuite>
  </testsuite>
  <testsuite name="lint" tests="1"><testcase name="l"/></testsuite>
</testsuites>`;
    expect(parseJunit(xml)).toEqual(counts(6, 1, 1, 1));
  });

  it('single-quoted attributes are read (the regex parser saw 0 tests)', () => {
    expect(parseJunit(`<testsuite name='pytest' tests='4' failures='1' errors='0' skipped='1'/>`)).toEqual(
      counts(4, 1, 0, 1),
    );
    expect(parseJunit(`<testsuites tests='9' failures="2"><testsuite tests='9'/></testsuites>`)).toEqual(
      counts(9, 2),
    );
  });

  it('a file with no totals anywhere: the test cases are counted, by outcome', () => {
    const xml = `<testsuites>
  <testsuite name="go">
    <testcase name="ok1"/>
    <testcase name="ok2"></testcase>
    <testcase name="bad"><failure message="want 1, got 2">x_test.go:12</failure></testcase>
    <testcase name="boom"><error message="panic">stack &amp; more</error></testcase>
    <testcase name="later"><skipped/></testcase>
    <testsuite name="inner"><testcase name="deep"/></testsuite>
  </testsuite>
</testsuites>`;
    expect(parseJunit(xml)).toEqual(counts(6, 1, 1, 1));
  });

  it('disabled counts as skipped; a suite whose counts are not numbers falls back to its cases', () => {
    expect(parseJunit('<testsuite tests="5" failures="0" disabled="2" skipped="1"/>')).toEqual(
      counts(5, 0, 0, 3),
    );
    expect(parseJunit('<testsuite tests="" failures="x"><testcase/><testcase/></testsuite>')).toEqual(
      counts(2),
    );
  });

  it('big <system-out> content is not in the way', () => {
    const out =
      '<system-out><![CDATA[' + 'log line with <tags> & stuff\n'.repeat(20_000) + ']]></system-out>';
    expect(parseJunit(`<testsuite tests="1"><testcase name="a">${out}</testcase></testsuite>`)).toEqual(
      counts(1),
    );
  });

  it('garbage is not a report', () => {
    for (const text of [
      '',
      'not xml',
      '<html><body>502 Bad Gateway</body></html>',
      '{"tests": 3}',
      '<<<>>>',
      '<testsuite',
    ])
      expect({ text, r: parseJunit(text) }).toEqual({ text, r: undefined });
  });
});

describe('parseJunit: the tags a host ships back (tests-runner.ts greps the <testsuite(s)> tags only)', () => {
  it('one opening tag per line, no closing tags, no test cases: the suites are siblings', () => {
    const fromHost = [
      '<testsuites>',
      '<testsuite name="s0"   tests="2" failures="0"   errors="0" skipped="0">',
      "<testsuite name='s1'   tests='2' failures='1'   errors='0' skipped='0'>",
      '<testsuite name="s2" tests="3" skipped="1"/>',
    ].join('\n');
    expect(parseJunit(fromHost)).toEqual(counts(7, 1, 0, 1));
  });

  it('the <testsuites> totals win when present', () => {
    expect(parseJunit('<testsuites tests="4" failures="1">\n<testsuite tests="4"/>\n')).toEqual(counts(4, 1));
  });

  it('with closing tags shipped too, a nested suite is not counted again', () => {
    const fromHost = [
      '<testsuites>',
      '<testsuite name="all" tests="5" failures="1">',
      '<testsuite name="unit" tests="3" failures="1">',
      '</testsuite>',
      '<testsuite name="e2e" tests="2">',
      '</testsuite>',
      '</testsuite>',
      '<testsuite name="lint" tests="1">',
      '</testsuite>',
      '</testsuites>',
    ].join('\n');
    // The tags alone are also well-formed XML; the same answer must come from either reading.
    expect(parseJunit(fromHost)).toEqual(counts(6, 1));
    expect(parseJunit(fromHost.replace('</testsuites>', ''))).toEqual(counts(6, 1));
  });

  it('a report cut short (or with an unescaped &) still yields the suite totals', () => {
    const cut =
      '<testsuites><testsuite name="a" tests="3" failures="1"><testcase name="x &y"/><testcase name="tr';
    expect(parseJunit(cut)).toEqual(counts(3, 1));
  });
});
