import { createHmac } from 'node:crypto';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { NotifySettings } from '../../src/config/types';
import { loadConfig } from '../../src/config/load';
import { sendNotifications } from '../../src/notify/send';
import { observabilitySecrets } from '../../src/observe';
import type { Report } from '../../src/report/types';
import { Redactor } from '../../src/secrets/redact';
import { MINIMAL, writeConfig } from '../fixtures/config';

interface Req {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

async function server(handler: (req: Req, res: http.ServerResponse) => void) {
  const reqs: Req[] = [];
  const s = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const r = { path: req.url ?? '', headers: req.headers, body };
      reqs.push(r);
      handler(r, res);
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    reqs,
    close: () => (s.closeAllConnections(), new Promise<void>((r) => s.close(() => r()))),
  };
}

const ok = (_r: Req, res: http.ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end('{"ok":true}');
};

const TOKEN = '123456:AAHsecretBotTokenValue';
const HOOK_SECRET = 'whsec-very-secret';

function report(status: Report['status'], rollbackFailed = false): Report {
  return {
    schema: 1,
    project: 'homelab',
    status,
    phase: 'public',
    systemsDeployed: status === 'success' ? ['thinkpad', 'rtx1080', 'vps'] : ['thinkpad', 'rtx1080'],
    durationSeconds: 42,
    startedAt: '2026-11-23T04:00:00Z',
    finishedAt: '2026-11-23T04:00:42Z',
    release: { id: 'abcdef012345', commit: 'abcdef0123456789abcdef0123456789abcdef01', ref: 'main' },
    run: {},
    phasesRequested: ['all'],
    error:
      status === 'success' ? undefined : { class: 'health-failed', message: 'vps: app <b>503</b> & down' },
    rollbackFailed: rollbackFailed || undefined,
    phases: [],
    hosts: [
      { host: 'thinkpad', stage: 'staging', before: '111111111111', after: 'abcdef012345', state: 'new' },
      { host: 'rtx1080', stage: 'production', before: '111111111111', after: 'abcdef012345', state: 'new' },
      {
        host: 'vps',
        stage: 'public',
        before: '111111111111',
        after: '111111111111',
        state: 'previous',
        rollback: { ok: !rollbackFailed, to: '111111111111', durationMs: 800 },
      },
    ],
    audit: [],
  };
}

const ctx = {
  repository: 'jjeco/homelab',
  runUrl: 'https://github.com/jjeco/homelab/actions/runs/9',
  environment: 'production',
};

describe("notifications against local servers speaking each service's API", () => {
  it('sends every event to Telegram, Slack, Discord and a signed webhook, formatted per service', async () => {
    const tg = await server(ok);
    const sl = await server(ok);
    const dc = await server((_r, res) => {
      res.writeHead(204);
      res.end();
    });
    const wh = await server(ok);
    const env = {
      TG_TOKEN: TOKEN,
      SLACK_URL: `${sl.url}/services/T000/B000/XXXX`,
      DISCORD_URL: `${dc.url}/api/webhooks/1/abc`,
      HOOK_URL: `${wh.url}/deploy-events`,
      HOOK_SECRET,
    };
    const cfg: NotifySettings = {
      events: ['started', 'succeeded', 'partial_success', 'failed', 'rolled_back', 'rollback_failed'],
      timeoutMs: 2000,
      retries: 1,
      telegram: { tokenEnv: 'TG_TOKEN', chatId: '-1001234', apiUrl: tg.url },
      slack: { webhookEnv: 'SLACK_URL' },
      discord: { webhookEnv: 'DISCORD_URL' },
      webhook: { urlEnv: 'HOOK_URL', secretEnv: 'HOOK_SECRET' },
    };
    const warnings: string[] = [];
    const events = [
      ['started', { project: 'homelab', release: report('success').release }],
      ['succeeded', report('success')],
      ['partial_success', report('partial_success')],
      ['failed', report('failed')],
      ['rolled_back', report('rolled_back')],
      ['rollback_failed', report('failed', true)],
    ] as const;
    for (const [event, r] of events) {
      const res = await sendNotifications(event, r as Report, ctx, cfg, env, new Redactor(), (m) =>
        warnings.push(m),
      );
      expect(res.map((x) => [x.service, x.ok])).toEqual([
        ['telegram', true],
        ['slack', true],
        ['discord', true],
        ['webhook', true],
      ]);
    }
    expect(warnings).toEqual([]);

    expect(tg.reqs.map((r) => r.path)).toEqual(Array(6).fill(`/bot${TOKEN}/sendMessage`));
    const tgPartial = JSON.parse(tg.reqs[2].body);
    expect(tgPartial).toMatchObject({
      chat_id: '-1001234',
      parse_mode: 'HTML',
      disable_web_page_preview: true,
    });
    expect(tgPartial.text).toContain('<b>⚠️ Partial success: manual intervention required</b>');
    expect(tgPartial.text).toContain(
      'jjeco/homelab <code>main</code> @ <code>abcdef012345</code> → production',
    );
    expect(tgPartial.text).toContain('vps: app &lt;b&gt;503&lt;/b&gt; &amp; down');
    expect(tgPartial.text).toContain('• vps (public): rolled back to 111111111111');
    expect(tgPartial.text).toContain(
      '<a href="https://github.com/jjeco/homelab/actions/runs/9">Open the run</a>',
    );
    expect(JSON.parse(tg.reqs[5].body).text).toContain('ROLLBACK FAILED');

    expect(sl.reqs[0].path).toBe('/services/T000/B000/XXXX');
    const slack = JSON.parse(sl.reqs[1].body);
    expect(slack.text).toBe('✅ Deploy succeeded: homelab abcdef012345');
    expect(slack.blocks[0]).toMatchObject({ type: 'section', text: { type: 'mrkdwn' } });
    expect(slack.blocks[0].text.text).toContain(
      '<https://github.com/jjeco/homelab/actions/runs/9|Open the run>',
    );

    const embed = JSON.parse(dc.reqs[3].body).embeds[0];
    expect(dc.reqs[3].path).toBe('/api/webhooks/1/abc');
    expect(embed).toMatchObject({
      title: '❌ Deploy failed: jjeco/homelab',
      color: 0xc92a2a,
      url: ctx.runUrl,
    });
    expect(embed.fields.find((f: { name: string }) => f.name === 'Status').value).toBe('failed');

    const hook = wh.reqs[4];
    expect(hook.headers['x-homelab-deploy-event']).toBe('rolled_back');
    expect(hook.headers['x-homelab-deploy-signature-256']).toBe(
      'sha256=' + createHmac('sha256', HOOK_SECRET).update(hook.body).digest('hex'),
    );
    expect(JSON.parse(hook.body)).toMatchObject({
      source: 'homelab-deploy',
      event: 'rolled_back',
      status: 'rolled_back',
      release: 'abcdef012345',
      environment: 'production',
    });
    for (const s of [tg, sl, dc, wh]) await s.close();
  });

  it('filters by configured events', async () => {
    const wh = await server(ok);
    const cfg: NotifySettings = { events: ['failed'], timeoutMs: 1000, retries: 0, webhook: { urlEnv: 'U' } };
    expect(
      await sendNotifications(
        'succeeded',
        report('success'),
        ctx,
        cfg,
        { U: wh.url },
        new Redactor(),
        () => undefined,
      ),
    ).toEqual([]);
    expect(wh.reqs).toHaveLength(0);
    await wh.close();
  });

  it('a down and a slow endpoint: bounded time, failures reported without secrets, result unchanged', async () => {
    const slow = await server(() => undefined); // accepts, never answers
    const flaky = await server((_r, res) => {
      res.writeHead(500);
      res.end();
    });
    const cfg: NotifySettings = {
      events: ['failed'],
      timeoutMs: 400,
      retries: 2,
      telegram: { tokenEnv: 'TG_TOKEN', chatId: '1', apiUrl: slow.url },
      slack: { webhookEnv: 'SLACK_URL' },
      discord: { webhookEnv: 'DISCORD_URL' },
      webhook: { urlEnv: 'MISSING' },
    };
    const closed = await server(ok);
    await closed.close(); // a port nobody listens on any more: connection refused
    const env = {
      TG_TOKEN: TOKEN,
      SLACK_URL: `${closed.url}/services/secret-path`,
      DISCORD_URL: `${flaky.url}/api/webhooks/secret-discord`,
    };
    const warnings: string[] = [];
    const r = report('failed');
    const before = JSON.stringify(r);
    const t0 = Date.now();
    const res = await sendNotifications('failed', r, ctx, cfg, env, new Redactor(), (m) => warnings.push(m));
    const elapsed = Date.now() - t0;
    // Three attempts of 400 ms plus 250 + 500 ms backoff, in parallel; generous bound for a loaded machine.
    expect(elapsed).toBeLessThan(400 * 3 + 750 + 2000);
    expect(res.map((x) => [x.service, x.ok, x.attempts])).toEqual([
      ['telegram', false, 3],
      ['slack', false, 3],
      ['discord', false, 3],
      ['webhook', false, 0],
    ]);
    expect(res[0].error).toBe('no answer within 400ms');
    expect(res[1].error).toBe('ECONNREFUSED');
    expect(res[2].error).toBe('HTTP 500');
    expect(res[3].error).toBe('MISSING is not set');
    expect(JSON.stringify(r)).toBe(before);
    const all = JSON.stringify(res) + warnings.join('\n');
    for (const secret of [TOKEN, 'secret-path', 'secret-discord']) expect(all).not.toContain(secret);
    expect(warnings.filter((w) => w.includes('the deploy result is unaffected'))).toHaveLength(3);
    await slow.close();
    await flaky.close();
  });

  it('an endpoint that accepts the connection and never reads or answers costs bounded time', async () => {
    const sockets: net.Socket[] = [];
    const hole = net.createServer((sock) => {
      sock.pause(); // accepts TCP, reads nothing, answers nothing
      sockets.push(sock);
    });
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(hole.address() as AddressInfo).port}/hook`;
    const cfg: NotifySettings = { events: ['failed'], timeoutMs: 300, retries: 1, webhook: { urlEnv: 'U' } };
    const t0 = Date.now();
    const res = await sendNotifications(
      'failed',
      report('failed'),
      ctx,
      cfg,
      { U: url },
      new Redactor(),
      () => 0,
    );
    const elapsed = Date.now() - t0;
    expect(res).toEqual([{ service: 'webhook', ok: false, attempts: 2, error: 'no answer within 300ms' }]);
    // Two attempts of 300 ms and one 250 ms backoff; the bound leaves room for a loaded machine.
    expect(elapsed).toBeGreaterThanOrEqual(850);
    expect(elapsed).toBeLessThan(2500);
    expect(sockets.length).toBe(2);
    for (const so of sockets) so.destroy();
    hole.close();
  });
});

describe('notification secrets', () => {
  it('registers every token and webhook URL even for an event that is filtered out', async () => {
    const redactor = new Redactor();
    const cfg: NotifySettings = {
      events: ['failed'],
      timeoutMs: 1000,
      retries: 0,
      telegram: { tokenEnv: 'T', chatId: '1', apiUrl: 'http://127.0.0.1:9' },
      slack: { webhookEnv: 'S' },
      webhook: { urlEnv: 'W', secretEnv: 'WS' },
    };
    const env = {
      T: TOKEN,
      S: 'https://hooks.slack.com/services/T1/B2/slack-secret',
      W: 'http://h/x',
      WS: HOOK_SECRET,
    };
    expect(await sendNotifications('succeeded', report('success'), ctx, cfg, env, redactor, () => 0)).toEqual(
      [],
    );
    expect(redactor.redact(`${TOKEN} ${env.S} ${HOOK_SECRET}`)).toBe('*** *** ***');
  });

  it('observabilitySecrets lists every value the config names, for the engine to register before the run', () => {
    const config = loadConfig(
      writeConfig(`${MINIMAL}notify:
  events: [failed]
  telegram: { token_env: TG, chat_id: "1" }
  slack: { webhook_env: SL }
  discord: { webhook_env: DC }
  webhook: { url_env: WH, secret_env: WHS }
metrics:
  pushgateway: { url: "http://pgw.example.com:9091", username_env: PU, password_env: PP }
`),
    );
    const env = {
      TG: TOKEN,
      SL: 'https://hooks.slack.com/services/T1/B2/slack-secret',
      DC: 'https://discord.com/api/webhooks/1/discord-secret',
      WH: 'https://user:hook-pass@hooks.example.com/deploy?key=k3y',
      WHS: HOOK_SECRET,
      PU: 'pusher',
      PP: 'pgw-pass',
      UNRELATED: 'not-a-secret',
    };
    const secrets = observabilitySecrets(config, env);
    expect(secrets).toEqual(
      expect.arrayContaining([
        TOKEN,
        env.SL,
        '/services/T1/B2/slack-secret',
        env.DC,
        '/api/webhooks/1/discord-secret',
        env.WH,
        'hook-pass',
        HOOK_SECRET,
        'pgw-pass',
        Buffer.from('pusher:pgw-pass').toString('base64'),
      ]),
    );
    expect(secrets).not.toContain('not-a-secret');
    expect(secrets).not.toContain('pusher');
    expect(observabilitySecrets(config, {})).toEqual([]);
  });
});

/**
 * What Telegram's HTML parse mode accepts: the supported tags, properly nested, `<` and `&` only as markup or
 * entities; at most 4096 characters of text once entities are parsed. Returns why a text is refused.
 */
function telegramHtmlProblem(text: string): string | undefined {
  const stack: string[] = [];
  let visible = 0;
  const re = /<(\/?)([a-z]+)((?:\s+[a-z]+="[^"]*")*)\s*>|&(?:lt|gt|amp|quot|#\d+);|[<&]|[^<&]+/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text))) {
    if (m[0] === '<' || m[0] === '&') return `unescaped ${m[0]} at ${m.index}`;
    if (m[2]) {
      if (!['b', 'strong', 'i', 'em', 'u', 's', 'code', 'pre', 'a'].includes(m[2]))
        return `unsupported <${m[2]}>`;
      if (m[1]) {
        if (stack.pop() !== m[2]) return `unbalanced </${m[2]}>`;
      } else stack.push(m[2]);
    } else visible += m[0].startsWith('&') ? 1 : m[0].length;
    if (re.lastIndex === text.length) break;
  }
  if (re.lastIndex !== text.length && text.length) return `cannot parse at ${re.lastIndex}`;
  if (stack.length) return `unclosed <${stack.join('>, <')}>`;
  if (visible > 4096) return `${visible} characters`;
  return undefined;
}

describe('Telegram message limits', () => {
  const telegramApi = (mode: 'validate' | 'reject-html') =>
    server((r, res) => {
      const body = JSON.parse(r.body) as { text: string; parse_mode?: string };
      const problem =
        body.parse_mode === 'HTML'
          ? mode === 'reject-html'
            ? 'reject'
            : telegramHtmlProblem(body.text)
          : body.text.length > 4096
            ? 'too long'
            : undefined;
      res.writeHead(problem ? 400 : 200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          problem
            ? { ok: false, error_code: 400, description: `Bad Request: can't parse entities: ${problem}` }
            : { ok: true },
        ),
      );
    });

  it('a message far over 4096 characters is cut on text, never inside a tag or entity', async () => {
    const tg = await telegramApi('validate');
    // A ref made of characters that all turn into entities, so any cut of the HTML string lands in one.
    const long = report('failed');
    long.release = { ...long.release, ref: 'feature/' + '<&>'.repeat(2000) };
    const cfg: NotifySettings = {
      events: ['failed'],
      timeoutMs: 2000,
      retries: 0,
      telegram: { tokenEnv: 'T', chatId: '1', apiUrl: tg.url },
    };
    const res = await sendNotifications('failed', long, ctx, cfg, { T: TOKEN }, new Redactor(), () => 0);
    expect(res).toEqual([{ service: 'telegram', ok: true, attempts: 1 }]);
    expect(tg.reqs).toHaveLength(1);
    const text = JSON.parse(tg.reqs[0].body).text as string;
    expect(telegramHtmlProblem(text)).toBeUndefined();
    expect(text.length).toBeLessThanOrEqual(4096);
    expect(text).toMatch(
      /^<b>❌ Deploy failed<\/b>\njjeco\/homelab <code>feature\/(&lt;&amp;&gt;)+[^<]*<\/code>…$/,
    );
    await tg.close();
  });

  it('when Telegram still refuses the formatting (400), the message goes again as plain text', async () => {
    const tg = await telegramApi('reject-html');
    const cfg: NotifySettings = {
      events: ['failed'],
      timeoutMs: 2000,
      retries: 2,
      telegram: { tokenEnv: 'T', chatId: '1', apiUrl: tg.url },
    };
    const warnings: string[] = [];
    const res = await sendNotifications(
      'failed',
      report('failed'),
      ctx,
      cfg,
      { T: TOKEN },
      new Redactor(),
      (m) => warnings.push(m),
    );
    // No retries of the refused request (a 4xx), one plain-text request after it.
    expect(res).toEqual([{ service: 'telegram', ok: true, attempts: 2 }]);
    expect(warnings).toEqual([]);
    const plain = JSON.parse(tg.reqs[1].body);
    expect(plain.parse_mode).toBeUndefined();
    expect(plain.text).toContain('vps: app <b>503</b> & down');
    expect(plain.text).toContain('Open the run: https://github.com/jjeco/homelab/actions/runs/9');
    await tg.close();
  });
});
