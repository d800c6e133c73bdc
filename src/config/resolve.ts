import * as os from 'node:os';
import * as path from 'node:path';
import { RETRYABLE_CLASSES } from '../errors';
import { NOTIFY_EVENTS } from './schema';
import type { ConfigIssue } from './errors';
import type {
  ConfigInput,
  DeployInput,
  HealthCheckInput,
  HostInput,
  SnapshotInput,
  SshInput,
  StageInput,
} from './schema';
import { nearest } from './suggest';
import type {
  Config,
  DeploySettings,
  HealthCheck,
  HostConfig,
  RetryPolicy,
  SnapshotSettings,
  SshSettings,
  StageConfig,
} from './types';

/** Defaults that reproduce the seed pipeline; kept together so the README can quote them. */
export const DEFAULTS = {
  user: 'deploy',
  port: 22,
  connectTimeoutMs: 15_000,
  commandTimeoutMs: 10 * 60_000,
  keepaliveIntervalMs: 10_000,
  keepaliveCount: 3,
  maxChannels: 8,
  basePath: '/srv/homelab',
  composeCommand: 'docker compose',
  composeFiles: ['compose.yaml'],
  deployTimeoutMs: 10 * 60_000,
  minFreeDiskBytes: 10e9,
  keepReleases: 5,
  parallel: 10,
  health: { timeoutMs: 5_000, intervalMs: 2_000, retries: 10, startPeriodMs: 0 },
  testsTimeoutMs: 10 * 60_000,
  retry: { attempts: 1, delayMs: 5_000, factor: 2, maxDelayMs: 60_000, jitter: 0.2 },
  publicRetry: { attempts: 3, delayMs: 5_000, factor: 2 },
  lock: { staleAfterMs: 15 * 60_000, takeoverStale: false, waitMs: 0 },
} as const;

const STAGE_ORDER = ['staging', 'production', 'public'] as const;

export function resolveConfig(input: ConfigInput, file: string, dir: string, issues: ConfigIssue[]): Config {
  const hostNames = Object.keys(input.hosts);
  if (hostNames.length === 0) issues.push({ path: 'hosts', message: 'at least one host is required' });
  const defaults = input.defaults ?? {};

  const hosts: Record<string, HostConfig> = {};
  for (const [name, h] of Object.entries(input.hosts)) {
    hosts[name] = resolveHost(name, h, defaults, input.project, dir, issues);
  }
  const format = input.secrets?.format ?? 'auto';
  for (const h of Object.values(hosts)) {
    h.envDialect =
      format !== 'auto'
        ? format
        : h.deploy.strategy === 'compose' && /podman-compose/.test(h.deploy.command)
          ? 'python-dotenv'
          : 'compose';
  }
  for (const h of Object.values(hosts)) {
    if (h.ssh.jump === undefined) continue;
    const p = `hosts.${h.name}.ssh.jump`;
    if (!hosts[h.ssh.jump]) issues.push({ path: p, message: unknownHost(h.ssh.jump, hostNames) });
    else if (h.ssh.jump === h.name) issues.push({ path: p, message: 'a host cannot be its own jump host' });
    else if (hosts[h.ssh.jump].ssh.jump !== undefined)
      issues.push({
        path: p,
        message: `jump host "${h.ssh.jump}" itself uses a jump host; only one hop is supported`,
      });
  }

  const globalHealth = (input.health ?? []).map((c, i) => resolveHealth(c, `health.${i}`, dir));
  const stages = input.stages
    ? input.stages.map((s, i) => resolveStage(s, i, hosts, issues, dir))
    : defaultStages(input.hosts, issues);
  for (const s of stages) s.health = [...globalHealth, ...s.health];

  const seenStage = new Set<string>();
  const hostStage = new Map<string, string>();
  stages.forEach((s, i) => {
    if (seenStage.has(s.name))
      issues.push({ path: `stages.${i}.name`, message: `stage "${s.name}" is declared twice` });
    seenStage.add(s.name);
    for (const h of s.hosts) {
      const other = hostStage.get(h);
      if (other !== undefined)
        issues.push({
          path: `stages.${i}.hosts`,
          message: `host "${h}" is already in stage "${other}"; a host belongs to one stage`,
        });
      hostStage.set(h, s.name);
    }
  });
  const reserved = ['preflight', 'secrets', 'snapshot', 'verify', 'all', 'rollback'];
  stages.forEach((s, i) => {
    if (reserved.includes(s.name))
      issues.push({
        path: `stages.${i}.name`,
        message: `"${s.name}" is a phase name; choose another stage name`,
      });
  });

  if (input.secrets) {
    const dup = input.secrets.keys.filter((k, i, a) => a.indexOf(k) !== i);
    if (dup.length)
      issues.push({ path: 'secrets.keys', message: `duplicate keys: ${[...new Set(dup)].join(', ')}` });
  }

  return {
    file,
    dir,
    project: input.project,
    source: path.resolve(dir, input.source ?? '.'),
    hosts,
    secrets: input.secrets ? { file: input.secrets.file ?? '.env', keys: input.secrets.keys } : undefined,
    stages,
    verify: {
      health: (input.verify?.health ?? []).map((c, i) => resolveHealth(c, `verify.health.${i}`, dir)),
      onFailure: input.verify?.on_failure ?? 'rollback-all',
    },
    lock: {
      staleAfterMs: input.lock?.stale_after ?? DEFAULTS.lock.staleAfterMs,
      takeoverStale: input.lock?.takeover_stale ?? DEFAULTS.lock.takeoverStale,
      waitMs: input.lock?.wait ?? DEFAULTS.lock.waitMs,
    },
    parallel: defaults.parallel ?? DEFAULTS.parallel,
    notify: input.notify && {
      events: input.notify.events ?? [...NOTIFY_EVENTS],
      timeoutMs: input.notify.timeout ?? 5_000,
      retries: input.notify.retries ?? 2,
      telegram: input.notify.telegram && {
        tokenEnv: input.notify.telegram.token_env,
        chatId: String(input.notify.telegram.chat_id),
        apiUrl: (input.notify.telegram.api_url ?? 'https://api.telegram.org').replace(/\/$/, ''),
      },
      slack: input.notify.slack && { webhookEnv: input.notify.slack.webhook_env },
      discord: input.notify.discord && { webhookEnv: input.notify.discord.webhook_env },
      webhook: input.notify.webhook && {
        urlEnv: input.notify.webhook.url_env,
        secretEnv: input.notify.webhook.secret_env,
      },
    },
    metrics: input.metrics && {
      pushgateway: input.metrics.pushgateway && {
        url: input.metrics.pushgateway.url.replace(/\/$/, ''),
        job: input.metrics.pushgateway.job ?? 'homelab_deploy',
        usernameEnv: input.metrics.pushgateway.username_env,
        passwordEnv: input.metrics.pushgateway.password_env,
      },
      textfile: input.metrics.textfile,
      environment: input.metrics.environment,
    },
  };
}

function unknownHost(name: string, known: string[]): string {
  const hint = nearest(name, known);
  return `unknown host "${name}"${hint ? `; did you mean "${hint}"?` : `; hosts are: ${known.join(', ')}`}`;
}

function expandHome(p: string, dir: string): string {
  if (p === '~' || p.startsWith('~/')) return path.join(os.homedir(), p.slice(1));
  return path.resolve(dir, p);
}

function resolveSsh(name: string, a: SshInput, b: SshInput, dir: string, issues: ConfigIssue[]): SshSettings {
  const m = { ...a, ...b };
  if (!m.known_hosts && !(m.fingerprints && m.fingerprints.length)) {
    issues.push({
      path: `hosts.${name}.ssh`,
      message:
        'no "known_hosts" file or "fingerprints" set: host keys are always verified, so one of them is required',
    });
  }
  if (!m.key && !m.key_env) {
    issues.push({
      path: `hosts.${name}.ssh`,
      message: 'no private key: set "key" (a file) or "key_env" (an environment variable name)',
    });
  }
  return {
    user: m.user ?? DEFAULTS.user,
    port: m.port ?? DEFAULTS.port,
    key: m.key ? expandHome(m.key, dir) : undefined,
    keyEnv: m.key_env,
    passphraseEnv: m.passphrase_env,
    knownHosts: m.known_hosts ? expandHome(m.known_hosts, dir) : undefined,
    fingerprints: m.fingerprints ?? [],
    connectTimeoutMs: m.connect_timeout ?? DEFAULTS.connectTimeoutMs,
    commandTimeoutMs: m.command_timeout ?? DEFAULTS.commandTimeoutMs,
    keepaliveIntervalMs: m.keepalive_interval ?? DEFAULTS.keepaliveIntervalMs,
    keepaliveCount: m.keepalive_count ?? DEFAULTS.keepaliveCount,
    maxChannels: m.max_channels ?? DEFAULTS.maxChannels,
    jump: m.jump,
  };
}

function resolveDeploy(name: string, a: DeployInput, b: DeployInput, issues: ConfigIssue[]): DeploySettings {
  const m = { ...a, ...b, compose: { ...a.compose, ...b.compose } };
  const strategy = m.strategy ?? (m.up ? 'command' : 'compose');
  const timeoutMs = m.timeout ?? DEFAULTS.deployTimeoutMs;
  if (strategy === 'command') {
    if (!m.up) {
      issues.push({
        path: `hosts.${name}.deploy.up`,
        message: 'the "command" strategy needs an "up" command',
      });
    }
    return { strategy, up: m.up ?? 'false', down: m.down, timeoutMs };
  }
  return {
    strategy,
    command: m.compose.command ?? DEFAULTS.composeCommand,
    files: m.compose.files ?? [...DEFAULTS.composeFiles],
    pull: m.compose.pull ?? true,
    upFlags: m.compose.up_flags ?? [],
    // podman-compose 1.0.3's `down` rejects --remove-orphans (its `up` accepts it).
    downFlags:
      m.compose.down_flags ?? (/podman-compose/.test(m.compose.command ?? '') ? [] : ['--remove-orphans']),
    timeoutMs,
  };
}

function defaultRuntimeCheck(d: DeploySettings): string {
  if (d.strategy !== 'compose') return 'true';
  const engine = d.command
    .trim()
    .split(/\s+/)[0]
    .replace(/-compose$/, '');
  return engine === 'docker' || engine === 'podman'
    ? `${engine} info >/dev/null`
    : `${d.command} version >/dev/null`;
}

function resolveHost(
  name: string,
  h: HostInput,
  d: NonNullable<ConfigInput['defaults']>,
  project: string,
  dir: string,
  issues: ConfigIssue[],
): HostConfig {
  const deploy = resolveDeploy(name, d.deploy ?? {}, h.deploy ?? {}, issues);
  return {
    name,
    address: h.address,
    ssh: resolveSsh(name, d.ssh ?? {}, h.ssh ?? {}, dir, issues),
    path: h.path ?? d.path ?? `${DEFAULTS.basePath}/${project}`,
    deploy,
    runtimeCheck: h.runtime_check ?? d.runtime_check ?? defaultRuntimeCheck(deploy),
    minFreeDiskBytes: h.min_free_disk ?? d.min_free_disk ?? DEFAULTS.minFreeDiskBytes,
    keepReleases: h.keep_releases ?? d.keep_releases ?? DEFAULTS.keepReleases,
    vars: Object.fromEntries(Object.entries(h.vars ?? {}).map(([k, v]) => [k, String(v)])),
    snapshot: resolveSnapshot(h.snapshot ?? d.snapshot, dir),
    envDialect: 'compose',
  };
}

function resolveSnapshot(s: SnapshotInput | undefined, dir: string): SnapshotSettings | undefined {
  if (!s) return undefined;
  const common = { keep: s.keep ?? 3, rollbackOnFailure: s.rollback ?? true };
  if (s.proxmox) {
    const p = s.proxmox;
    return {
      ...common,
      provider: 'proxmox',
      api: p.api.replace(/\/$/, ''),
      node: p.node,
      vmid: p.vmid,
      type: p.type ?? 'qemu',
      tokenEnv: p.token_env,
      caFile: p.ca_file ? path.resolve(dir, p.ca_file) : undefined,
      fingerprint: p.fingerprint,
      timeoutMs: p.timeout ?? 30_000,
      taskTimeoutMs: p.task_timeout ?? 10 * 60_000,
    };
  }
  const c = s.command as NonNullable<SnapshotInput['command']>;
  return { ...common, provider: 'command', create: c.create, rollback: c.rollback, delete: c.delete };
}

export function resolveHealth(c: HealthCheckInput, _path: string, dir = '.'): HealthCheck {
  const kind =
    c.http !== undefined
      ? 'http'
      : c.tcp !== undefined
        ? 'tcp'
        : c.command !== undefined
          ? 'command'
          : 'compose';
  const target =
    kind === 'compose'
      ? c.compose === true
        ? ''
        : (c.compose as string[]).join(',')
      : ((c.http ?? c.tcp ?? c.command) as string);
  const status = c.expect?.status;
  const release = c.expect?.release?.split(':');
  return {
    name:
      c.name ??
      (kind === 'compose' ? `compose ${target || 'all services'}` : `${kind} ${target.slice(0, 60)}`),
    kind,
    target,
    method: c.method ?? 'GET',
    headers: c.headers ?? {},
    caFile: c.ca_file ? path.resolve(dir, c.ca_file) : undefined,
    expect: {
      status:
        status === undefined
          ? kind === 'http'
            ? [200]
            : undefined
          : Array.isArray(status)
            ? status
            : [status],
      body: c.expect?.body,
      bodyRegex: c.expect?.body_regex,
      json: c.expect?.json,
      maxResponseTimeMs: c.expect?.max_response_time,
      release: release ? { in: release[0] as 'header' | 'json', key: release.slice(1).join(':') } : undefined,
      exitCode: c.expect?.exit_code ?? (kind === 'command' ? 0 : undefined),
      output: c.expect?.output,
      outputRegex: c.expect?.output_regex,
    },
    timeoutMs: c.timeout ?? DEFAULTS.health.timeoutMs,
    intervalMs: c.interval ?? DEFAULTS.health.intervalMs,
    retries: c.retries ?? DEFAULTS.health.retries,
    successes: c.successes ?? 1,
    startPeriodMs: c.start_period ?? DEFAULTS.health.startPeriodMs,
    deadlineMs: c.deadline,
  };
}

function resolveRetry(r: StageInput['retry'], base: Partial<RetryPolicy> = {}): RetryPolicy {
  return {
    attempts: r?.attempts ?? base.attempts ?? DEFAULTS.retry.attempts,
    delayMs: r?.delay ?? base.delayMs ?? DEFAULTS.retry.delayMs,
    factor: r?.factor ?? base.factor ?? DEFAULTS.retry.factor,
    maxDelayMs: r?.max_delay ?? DEFAULTS.retry.maxDelayMs,
    jitter: r?.jitter ?? DEFAULTS.retry.jitter,
    on: r?.on ?? [...RETRYABLE_CLASSES],
  };
}

function resolveStage(
  s: StageInput,
  i: number,
  hosts: Record<string, HostConfig>,
  issues: ConfigIssue[],
  dir: string,
): StageConfig {
  const known = Object.keys(hosts);
  s.hosts.forEach((h, j) => {
    if (!hosts[h]) issues.push({ path: `stages.${i}.hosts.${j}`, message: unknownHost(h, known) });
  });
  if (s.tests?.on !== undefined && s.tests.on !== 'runner' && !s.hosts.includes(s.tests.on)) {
    issues.push({
      path: `stages.${i}.tests.on`,
      message: `expected "runner" or a host of stage "${s.name}" (${s.hosts.join(', ')}), got "${s.tests.on}"`,
    });
  }
  return {
    name: s.name,
    hosts: s.hosts,
    health: (s.health ?? []).map((c, k) => resolveHealth(c, `stages.${i}.health.${k}`, dir)),
    tests: s.tests
      ? {
          run: s.tests.run,
          junit: s.tests.junit,
          on: s.tests.on ?? s.hosts[0],
          timeoutMs: s.tests.timeout ?? DEFAULTS.testsTimeoutMs,
        }
      : undefined,
    retry: resolveRetry(s.retry),
    onFailure: s.on_failure ?? 'rollback-all',
    parallel: s.parallel ?? DEFAULTS.parallel,
  };
}

/** Without a `stages` list, hosts tagged staging/production/public form the seed pipeline. */
function defaultStages(hosts: Record<string, HostInput>, issues: ConfigIssue[]): StageConfig[] {
  const untagged = Object.entries(hosts).filter(([, h]) => h.stage === undefined);
  for (const [name] of untagged) {
    issues.push({
      path: `hosts.${name}.stage`,
      message: 'no "stages" are declared, so every host needs "stage: staging | production | public"',
    });
  }
  return STAGE_ORDER.flatMap((stage) => {
    const members = Object.entries(hosts)
      .filter(([, h]) => h.stage === stage)
      .map(([n]) => n);
    if (members.length === 0) return [];
    const isPublic = stage === 'public';
    return [
      {
        name: stage,
        hosts: members,
        health: [],
        tests: undefined,
        retry: resolveRetry(undefined, isPublic ? DEFAULTS.publicRetry : {}),
        onFailure: isPublic ? ('rollback-stage' as const) : ('rollback-all' as const),
        parallel: DEFAULTS.parallel,
      },
    ];
  });
}
