import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { startVercelStandin, type VercelStandin } from '../helpers/vercel-standin';

/**
 * The stand-in answers in the shapes of Vercel's published API: Vercel's official SDK (generated from the OpenAPI
 * document, validating every response against its schemas) is pointed at it in a child process and must accept
 * each answer the Vercel target reads. The SDK is an ES module, so it runs in plain Node rather than under jest,
 * and only the operations used are loaded.
 */

const TOKEN = 'vcp_conformance_5Gh8Jk2Lm4';
const TEAM = { id: 'team_conf01', slug: 'conf' };
const SDK = path.join(__dirname, '../../node_modules/@vercel/sdk/esm');

const SCRIPT = `
const [sdk, serverURL, token, teamId, project, dep, staged] = process.argv.slice(1);
const load = (f) => import(sdk + '/' + f);
const { VercelCore } = await load('core.js');
const { projectsGetProject } = await load('funcs/projectsGetProject.js');
const { deploymentsGetDeployment } = await load('funcs/deploymentsGetDeployment.js');
const { deploymentsCreateDeployment } = await load('funcs/deploymentsCreateDeployment.js');
const { deploymentsCancelDeployment } = await load('funcs/deploymentsCancelDeployment.js');
const { aliasesListDeploymentAliases } = await load('funcs/aliasesListDeploymentAliases.js');
const { projectsRequestPromote } = await load('funcs/projectsRequestPromote.js');
const { projectsRequestRollback } = await load('funcs/projectsRequestRollback.js');
const v = new VercelCore({ bearerToken: token, serverURL });
const calls = {
  getProject: () => projectsGetProject(v, { idOrName: project, teamId }),
  getDeployment: () => deploymentsGetDeployment(v, { idOrUrl: dep, teamId }),
  listDeploymentAliases: () => aliasesListDeploymentAliases(v, { id: dep, teamId }),
  createDeployment: () => deploymentsCreateDeployment(v, { teamId, requestBody: { name: project, project, target: 'production',
    gitSource: { type: 'github', org: 'example', repo: project, ref: 'main', sha: '${'a'.repeat(40)}' }, meta: { hdRelease: 'r1' } } }),
  requestPromote: () => projectsRequestPromote(v, { projectId: project, deploymentId: staged, teamId }),
  requestRollback: () => projectsRequestRollback(v, { projectId: project, deploymentId: dep, teamId }),
};
// Zod's issues, union branches included, so a failure says which field of which shape did not match.
const issues = (e) => (e?.issues ?? []).flatMap((i) => i.unionErrors ? i.unionErrors.flatMap((u, k) => issues(u).map((x) => 'variant ' + k + ': ' + x)) : [i.path.join('.') + ' ' + i.message]);
const out = {};
for (const [name, call] of Object.entries(calls)) {
  const r = await call();
  out[name] = r.ok ? 'ok' : [String(r.error?.message ?? r.error), ...issues(r.error?.cause)].join(' | ');
}
const created = await deploymentsCreateDeployment(v, { teamId, requestBody: { name: project, project, gitSource: { type: 'github', org: 'example', repo: project, ref: 'main', sha: '${'b'.repeat(40)}' } } });
const cancelled = created.ok ? await deploymentsCancelDeployment(v, { id: created.value.id, teamId }) : undefined;
out.cancelDeployment = !created.ok ? 'create failed' : cancelled.ok ? 'ok' : [String(cancelled.error?.message), ...issues(cancelled.error?.cause)].join(' | ');
console.log(JSON.stringify(out));
`;

let standin: VercelStandin;

beforeAll(async () => {
  standin = await startVercelStandin({ token: TOKEN, team: TEAM, buildMs: 5000 });
});

afterAll(() => standin.close());

test("Vercel's official SDK accepts every stand-in answer the target reads", async () => {
  const p = standin.addProject({ name: 'shop', domains: ['shop.example.com'] });
  // A staged production build, READY and not promoted, for the promote call.
  standin.buildMs = 5;
  const staged = await new Promise<string>((resolve) => {
    const body = JSON.stringify({
      name: 'shop',
      project: p.id,
      target: 'production',
      autoAssignCustomDomains: false,
      gitSource: { type: 'github', org: 'example', repo: 'shop', ref: 'main', sha: 'c'.repeat(40) },
    });
    void fetch(`${standin.apiUrl}/v13/deployments?teamId=${TEAM.id}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body,
    })
      .then((r) => r.json() as Promise<{ id: string }>)
      .then((d) => setTimeout(() => resolve(d.id), 200));
  });
  expect(standin.deployment(staged).readyState).toBe('READY');
  standin.buildMs = 5000;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      SCRIPT,
      SDK,
      standin.apiUrl,
      TOKEN,
      TEAM.id,
      p.id,
      p.production as string,
      staged,
    ],
    { timeout: 60_000 },
  );
  expect(JSON.parse(stdout)).toEqual({
    getProject: 'ok',
    getDeployment: 'ok',
    listDeploymentAliases: 'ok',
    createDeployment: 'ok',
    requestPromote: 'ok',
    requestRollback: 'ok',
    cancelDeployment: 'ok',
  });
});
