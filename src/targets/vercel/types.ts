import type { aliasesListDeploymentAliases } from '@vercel/sdk/funcs/aliasesListDeploymentAliases.js';
import type { deploymentsCreateDeployment } from '@vercel/sdk/funcs/deploymentsCreateDeployment.js';
import type { deploymentsGetDeployment } from '@vercel/sdk/funcs/deploymentsGetDeployment.js';
import type { projectsGetProject } from '@vercel/sdk/funcs/projectsGetProject.js';

/**
 * Request and response shapes of the Vercel REST API, taken from the official SDK's published types (generated from
 * Vercel's OpenAPI document). Only types are imported: nothing of the SDK is bundled or loaded at run time, so the
 * SDK can live in devDependencies. The operation functions are the stable names to derive from (the SDK's model
 * file names are generated and change between releases).
 *
 * Responses are read defensively at run time (see api.ts): the views below name only the fields this target reads,
 * with their types from the SDK where one exists.
 */

type OkValue<F extends (...args: never[]) => PromiseLike<unknown>> = Extract<
  Awaited<ReturnType<F>>,
  { ok: true }
>['value'];

type SdkCreateRequestBody = Parameters<typeof deploymentsCreateDeployment>[1]['requestBody'];
type SdkDeployment = OkValue<typeof deploymentsGetDeployment>;
type SdkProject = OkValue<typeof projectsGetProject>;
type SdkAliases = OkValue<typeof aliasesListDeploymentAliases>;

export type GitSource = NonNullable<SdkCreateRequestBody['gitSource']>;
export type DeploymentFile = NonNullable<SdkCreateRequestBody['files']>[number];

/**
 * POST /v13/deployments body, as this target sends it. `autoAssignCustomDomains: false` is what the Vercel CLI
 * sends for `vercel deploy --prod --skip-domain`: a production build that gets no production domains until it is
 * promoted (a "staged" production deployment). The published OpenAPI lists the field on the deployment object but
 * not in the request body, so it is added here.
 */
export type CreateDeploymentBody = Pick<
  SdkCreateRequestBody,
  'name' | 'project' | 'target' | 'gitSource' | 'files' | 'meta' | 'deploymentId'
> & { autoAssignCustomDomains?: boolean };

/** readyState: QUEUED, INITIALIZING, BUILDING, READY, ERROR, CANCELED (and BLOCKED, which waits on a human). */
export type ReadyState = SdkDeployment['readyState'];
export type ReadySubstate = NonNullable<Extract<SdkDeployment, { readySubstate?: unknown }>['readySubstate']>;

/** The fields of a deployment (GET /v13/deployments/{id}, POST /v13/deployments) this target reads. */
export interface DeploymentView {
  id: string;
  /** Host name without scheme, e.g. `shop-abc123-team.vercel.app`. */
  url: string;
  readyState: ReadyState;
  readySubstate?: ReadySubstate;
  readyStateReason?: string;
  /** `production`, or null/absent for a preview. */
  target?: string | null;
  meta: Record<string, string>;
  alias: string[];
  errorCode?: string;
  errorMessage?: string | null;
  createdAt?: number;
  projectId?: string;
}

/** A production deployment as GET /v9/projects/{idOrName} lists it under `targets.production`. */
export interface ProjectDeploymentView {
  id: string;
  url: string;
  readyState?: string;
  meta: Record<string, string>;
  alias: string[];
  createdAt?: number;
}

type SdkLastAliasRequest = NonNullable<SdkProject['lastAliasRequest']>;

/** The project's last promote/rollback job: how the API tells that a domain switch finished. */
export interface AliasRequestView {
  type: SdkLastAliasRequest['type'];
  jobStatus: SdkLastAliasRequest['jobStatus'];
  toDeploymentId: string;
  fromDeploymentId: string | null;
  requestedAt: number;
}

export interface ProjectView {
  id: string;
  name: string;
  accountId?: string;
  production: ProjectDeploymentView | null;
  lastAliasRequest: AliasRequestView | null;
}

export interface AliasView {
  alias: SdkAliases['aliases'][number]['alias'];
  uid: string;
  redirect?: string | null;
}

/** `{"error": {"code", "message", ...}}`, the error body every endpoint answers with. */
export interface ApiErrorBody {
  code?: string;
  message?: string;
  limit?: { total?: number; remaining?: number; reset?: number; resetMs?: number };
  /** On `missing_files`: the SHA1 digests the API has not received. */
  missing?: string[];
  invalidToken?: boolean;
}
