import { DeployError } from '../../src/errors';
import { shQuote } from '../../src/remote/quote';
import { Redactor } from '../../src/secrets/redact';

/** What redactDeep promised before it stopped copying: a JSON round trip with every string redacted. */
function roundTrip<T>(r: Redactor, v: T): T {
  return JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'string' ? r.redact(x) : x))) as T;
}

describe('Redactor', () => {
  const hostile = `p$a"ss\\w'rd/+x é\twith space`;

  it('masks every form a value takes: raw, JSON, env files, shell words, URLs, base64', () => {
    const r = new Redactor();
    r.add(hostile, 'HOSTILE');
    const b64 = Buffer.from(hostile).toString('base64');
    const forms = {
      raw: hostile,
      json: JSON.stringify(hostile).slice(1, -1),
      compose: hostile.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '\\$'),
      dotenv: hostile.replace(/\\/g, '\\\\').replace(/'/g, "\\'"),
      shell: shQuote(hostile).slice(1, -1),
      url: encodeURIComponent(hostile),
      base64: b64,
      base64bare: b64.replace(/=+$/, ''),
      base64url: Buffer.from(hostile).toString('base64url'),
    };
    for (const [name, form] of Object.entries(forms)) {
      expect([name, r.redact(`before ${form} after`)]).toEqual([name, 'before *** after']);
    }
  });

  it('masks a multi-line value whole and line by line, but not PEM armor lines', () => {
    const r = new Redactor();
    const pem =
      '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQyNTUxOQAAACBcc2VjcmV0\n-----END OPENSSH PRIVATE KEY-----\n';
    r.add(pem);
    expect(r.redact(`key:\n${pem}`)).toBe('key:\n***\n');
    expect(r.redact('tail: QyNTUxOQAAACBcc2VjcmV0')).toBe('tail: ***');
    expect(r.redact('-----BEGIN OPENSSH PRIVATE KEY-----')).toBe('-----BEGIN OPENSSH PRIVATE KEY-----');
    r.add('first-line\nsecond "line"');
    expect(r.redact(JSON.stringify({ e: 'first-line\nsecond "line"' }))).toBe('{"e":"***"}');
  });

  it('masks the longest value first, so one that contains another goes whole', () => {
    const r = new Redactor();
    r.add('abcd');
    r.add('abcdefgh');
    r.add('bcdefg');
    expect(r.redact('x abcdefgh x')).toBe('x *** x');
    expect(r.redact('x abcdefg x')).toBe('x a*** x');
    expect(r.redact('abcd abcd')).toBe('*** ***');
  });

  it('masks values added after earlier redactions, across many batches', () => {
    const r = new Redactor();
    const secrets = Array.from({ length: 30 }, (_, i) => `secret-number-${i}-${'z'.repeat(i)}`);
    for (const [i, s] of secrets.entries()) {
      expect(r.redact(`value ${s}`)).toBe(`value ${s}`); // not known yet
      r.add(s);
      for (const earlier of secrets.slice(0, i + 1)) expect(r.redact(`[${earlier}]`)).toBe('[***]');
    }
    expect(r.redact(secrets.join(' '))).toBe(secrets.map(() => '***').join(' '));
  });

  it('returns text that holds no value as it is, with or without short values', () => {
    const r = new Redactor();
    expect(r.redact('anything')).toBe('anything');
    r.add('long-secret-value');
    const text = 'free=123456789\ncurrent=abcdef123456\n';
    expect(r.redact(text)).toBe(text);
    expect(r.redact('')).toBe('');
    r.add('ab1');
    expect(r.redact('ab12 xab1 ab1.')).toBe('ab12 xab1 ***.');
  });

  it('hands each value to subscribers once, before and after they subscribe', () => {
    const r = new Redactor();
    r.add('early-value');
    const seen: string[] = [];
    r.subscribe((v) => seen.push(v));
    r.add('late-value');
    r.add('late-value');
    expect(seen.filter((v) => v === 'early-value')).toHaveLength(1);
    expect(seen.filter((v) => v === 'late-value')).toHaveLength(1);
    expect(seen).toContain(Buffer.from('late-value').toString('base64'));
  });
});

describe('Redactor.redactDeep', () => {
  const r = new Redactor();
  r.add('s3cr3t-value');
  r.add('x');

  class Point {
    constructor(
      readonly x: number,
      readonly label: string,
    ) {}
  }

  const samples: [string, unknown][] = [
    ['a string', 'say s3cr3t-value'],
    ['a number', 42],
    ['null', null],
    [
      'an event',
      { type: 'host-step', host: 'h1', step: { name: 'x', output: 'token s3cr3t-value\n', ok: true } },
    ],
    ['nested arrays', { a: [['s3cr3t-value', 1], [{ b: 'x' }]], c: [] }],
    ['undefined and functions', { a: undefined, b: () => 1, c: [undefined, () => 1, Symbol('s')], d: 'ok' }],
    ['odd numbers', { nan: NaN, inf: -Infinity, zero: -0, list: [NaN, 1] }],
    ['a date', { at: new Date(0), list: [new Date(86_400_000)] }],
    ['an error', { error: new DeployError('timeout', 'slow s3cr3t-value', { host: 'h' }) }],
    ['a class instance', { p: new Point(1, 's3cr3t-value') }],
    ['toJSON', { t: { toJSON: () => 'from toJSON s3cr3t-value' } }],
    ['a null prototype', Object.assign(Object.create(null) as object, { k: 's3cr3t-value' })],
    ['booleans', [true, false]],
  ];

  it.each(samples)('gives what the JSON round trip gives for %s', (_name, value) => {
    expect(r.redactDeep(value)).toStrictEqual(roundTrip(r, value));
  });

  it('shares what needs no change and never changes its input', () => {
    const clean = { type: 'log', level: 'info', message: 'all fine', list: [1, 'two', { three: 3 }] };
    expect(r.redactDeep(clean)).toBe(clean);
    const event = {
      type: 'host-step',
      meta: { host: 'h1', attempt: 1 },
      step: { name: 'up', output: 'token=s3cr3t-value' },
    };
    const copy = JSON.parse(JSON.stringify(event)) as typeof event;
    const out = r.redactDeep(event);
    expect(out).not.toBe(event);
    expect(out.step.output).toBe('token=***');
    expect(out.meta).toBe(event.meta); // the unchanged part is shared, not copied
    expect(event).toEqual(copy);
  });
});
