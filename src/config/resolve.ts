import * as os from 'node:os';
import * as path from 'node:path';
import { RETRYABLE_CLASSES } from '../errors';
import { FALLBACK_KEY_ENV, FALLBACK_KNOWN_HOSTS_ENV } from '../remote/fallback';
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
import { resolveRelease } from '../release/config';
import { crossReferenceIssues } from './references';
import {
  resolveLabels,
  resolveRollout,
  resolveTarget,
  resolveWindow,
  overlapIssues,
  stageTargets,
  TARGET_DEFAULTS,
  targetIssues,
} from './resolve-targets';
import type {
  Config,
  DeploySettings,
  HealthCheck,
  HostConfig,
  RetryPolicy,
  SnapshotSettings,
  SshSettings,
  StageConfig,
  TargetConfig,
  TestsConfig,
} from './types';

/** Defaults that reproduce the default pipeline (staging, production, public); kept together so the README can quote them. */
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

export function resolveConfig(
  input: ConfigInput,
  file: string,
  dir: string,
  issues: ConfigIssue[],
  notes: ConfigIssue[] = [],
): Config {
  const defaults = input.defaults ?? {};
  // Cross-references (stage hosts, jump hosts, duplicates) are checked on the input, the same way load.ts checks
  // them when the schema failed, so both paths report them alike.
  issues.push(...crossReferenceIssues(input));

  const hosts: Record<string, HostConfig> = {};
  for (const [name, h] of Object.entries(input.hosts ?? {})) {
    hosts[name] = resolveHost(name, h, defaults, input.project, dir, issues);
  }
  const targets: Record<string, TargetConfig> = { ...hosts };
  for (const [name, t] of Object.entries(input.targets ?? {})) {
    targets[name] = resolveTarget(name, t, input, dir);
    issues.push(...targetIssues(name, targets[name]));
  }
  const selectable = Object.values(targets);
  const format = input.secrets?.format ?? 'auto';
  for (const h of Object.values(hosts)) {
    h.envDialect =
      format !== 'auto'
        ? format
        : h.deploy.strategy === 'compose' && /podman-compose/.test(h.deploy.command)
          ? 'python-dotenv'
          : 'compose';
  }
  notes.push(...fallbackNotes(hosts));

  const globalHealth = (input.health ?? []).map((c, i) => resolveHealth(c, `health.${i}`, dir));
  // A stage without its own `parallel` works through its targets as wide as the config's default.
  const parallel = defaults.parallel ?? DEFAULTS.parallel;
  const stages = input.stages
    ? input.stages.map((s, i) => resolveStage(s, stageTargets(s, i, selectable, issues), parallel, dir))
    : defaultStages(selectable, parallel, input.tests);
  for (const s of stages) s.health = [...globalHealth, ...s.health];
  issues.push(...overlapIssues(stages, input));

  return {
    file,
    dir,
    project: input.project,
    source: path.resolve(dir, input.source ?? '.'),
    hosts,
    targets,
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
    parallel,
    checkpointAbove: input.checkpoint?.above ?? TARGET_DEFAULTS.checkpointAbove,
    release: resolveRelease(
      input.release,
      dir,
      stages.map((s) => s.name),
      issues,
    ),
    window: resolveWindow(input.window, issues),
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
    notes,
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

function expandHome(p: string, dir: string): string {
  if (p === '~' || p.startsWith('~/')) return path.join(os.homedir(), p.slice(1));
  return path.resolve(dir, p);
}

function resolveSsh(a: SshInput, b: SshInput, dir: string): SshSettings {
  const m = { ...a, ...b };
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
  // Host vars reach commands as HD_VAR_<NAME> (deploy/commands.ts); two names mapping to one would silently lose one.
  const envNames = new Map<string, string>();
  for (const k of Object.keys(h.vars ?? {})) {
    const env = `HD_VAR_${k.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;
    const other = envNames.get(env);
    if (other !== undefined)
      issues.push({
        path: `hosts.${name}.vars.${k}`,
        message: `vars "${other}" and "${k}" both become ${env} in the host's environment; rename one`,
      });
    envNames.set(env, k);
  }
  return {
    kind: 'ssh',
    name,
    stageTag: h.stage,
    labels: resolveLabels(d, h.labels),
    address: h.address,
    ssh: resolveSsh(d.ssh ?? {}, h.ssh ?? {}, dir),
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

function resolveStage(s: StageInput, targets: string[], parallel: number, dir: string): StageConfig {
  return {
    name: s.name,
    targets,
    health: (s.health ?? []).map((c) => resolveHealth(c, '', dir)),
    tests: s.tests ? resolveTests(s.tests, targets) : undefined,
    retry: resolveRetry(s.retry),
    onFailure: s.on_failure ?? 'rollback-all',
    parallel: s.parallel ?? parallel,
    rollout: resolveRollout(s.rollout, targets.length),
  };
}

function resolveTests(t: NonNullable<StageInput['tests']>, hosts: string[]): TestsConfig {
  return {
    run: t.run,
    junit: t.junit,
    on: t.on ?? hosts[0],
    timeoutMs: t.timeout ?? DEFAULTS.testsTimeoutMs,
  };
}

/**
 * Hosts that name no key or no host-key source in the config are fine when the run supplies them (the action's
 * ssh-key / known-hosts inputs, DEPLOY_SSH_KEY / DEPLOY_KNOWN_HOSTS); the pool refuses them at connect time when
 * it has none. One note covers all hosts when none of them sets it.
 */
function fallbackNotes(hosts: Record<string, HostConfig>): ConfigIssue[] {
  const all = Object.values(hosts);
  const noKey = all.filter((h) => !h.ssh.key && !h.ssh.keyEnv).map((h) => h.name);
  const noHostKeys = all
    .filter((h) => !h.ssh.knownHosts && h.ssh.fingerprints.length === 0)
    .map((h) => h.name);
  const note = (names: string[], what: string, needs: string): ConfigIssue[] => {
    if (names.length === 0) return [];
    if (names.length === all.length && all.length > 1)
      return [
        { path: 'defaults.ssh', message: `no host sets ${what}: every host needs ${needs} at run time` },
      ];
    return names.map((n) => ({
      path: `hosts.${n}.ssh`,
      message: `no ${what}: this host needs ${needs} at run time`,
    }));
  };
  return [
    ...note(noKey, 'private key ("key" or "key_env")', `the action's ssh-key input or ${FALLBACK_KEY_ENV}`),
    ...note(
      noHostKeys,
      '"known_hosts" file or "fingerprints"',
      `the action's known-hosts input or ${FALLBACK_KNOWN_HOSTS_ENV} (host keys are always verified)`,
    ),
  ];
}

/** Without a `stages` list, targets tagged staging/production/public form the default pipeline. */
function defaultStages(all: TargetConfig[], parallel: number, tests?: StageInput['tests']): StageConfig[] {
  return STAGE_ORDER.flatMap((stage) => {
    const members = all.filter((t) => t.stageTag === stage).map((t) => t.name);
    if (members.length === 0) return [];
    const isPublic = stage === 'public';
    return [
      {
        name: stage,
        targets: members,
        health: [],
        tests: stage === 'staging' && tests ? resolveTests(tests, members) : undefined,
        retry: resolveRetry(undefined, isPublic ? DEFAULTS.publicRetry : {}),
        onFailure: isPublic ? ('rollback-stage' as const) : ('rollback-all' as const),
        parallel,
        rollout: resolveRollout(undefined, members.length),
      },
    ];
  });
}
