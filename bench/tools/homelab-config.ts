import { Document, isMap, isPair, isSeq } from 'yaml';
import { MIN_FREE_KIB } from '../workload';

export interface HomelabConfigOptions {
  hosts: { name: string; address: string; port: number; dir: string }[];
  user: string;
  privateKey: string;
  knownHosts: string;
  /** what the health check expects in current/REVISION */
  release: string;
  secretKeys: string[];
  /** defaults.parallel and the stage's parallel; undefined leaves the product's defaults */
  parallel?: number;
}

/** The config's stage, typed loosely on purpose: scenarios add product keys (e.g. a rollout) before it is written. */
export type StageConfig = Record<string, unknown> & { name: string; hosts: string[] };

export interface HomelabConfig {
  version: 1;
  project: string;
  source: string;
  defaults: Record<string, unknown>;
  secrets: { file: string; keys: string[] };
  stages: StageConfig[];
  hosts: Record<string, { address: string; ssh: { port: number }; path: string }>;
}

/** Directory of the scratch repo whose files are deployed; REVISION sits at its top. */
export const SOURCE_DIR = 'app';

/**
 * The redeploy job in the product's terms: the `command` strategy with no-op up/down, a trivial runtime
 * check, a small free-disk threshold, the env file from secrets, one stage holding every host with a
 * command health check that reads back the release.
 */
export function homelabConfig(o: HomelabConfigOptions): HomelabConfig {
  const defaults: Record<string, unknown> = {
    ssh: { user: o.user, key: o.privateKey, known_hosts: o.knownHosts },
    deploy: { strategy: 'command', up: 'true', down: 'true' },
    runtime_check: 'true',
    min_free_disk: `${MIN_FREE_KIB}KiB`,
  };
  const stage: StageConfig = {
    name: 'fleet',
    hosts: o.hosts.map((h) => h.name),
    health: [
      { name: 'revision', command: 'cat {{host.path}}/current/REVISION', expect: { output: o.release } },
    ],
  };
  if (o.parallel !== undefined) {
    defaults.parallel = o.parallel;
    stage.parallel = o.parallel;
  }
  return {
    version: 1,
    project: 'bench',
    source: SOURCE_DIR,
    defaults,
    secrets: { file: '.env', keys: o.secretKeys },
    stages: [stage],
    hosts: Object.fromEntries(
      o.hosts.map((h) => [h.name, { address: h.address, ssh: { port: h.port }, path: h.dir }]),
    ),
  };
}

/** YAML as a person would write a large inventory: one flow mapping per host, the stage's host list on one line. */
export function renderHomelabConfig(config: HomelabConfig, comment: string): string {
  const doc = new Document(config);
  doc.commentBefore = ` ${comment}`;
  const hosts = doc.get('hosts', true);
  if (isMap(hosts))
    for (const pair of hosts.items) if (isPair(pair) && isMap(pair.value)) pair.value.flow = true;
  const stages = doc.get('stages', true);
  if (isSeq(stages)) {
    for (const stage of stages.items) {
      if (!isMap(stage)) continue;
      for (const key of ['hosts', 'health']) {
        const list = stage.get(key, true);
        if (isSeq(list)) list.flow = true;
      }
    }
  }
  return doc.toString({ lineWidth: 0 });
}
