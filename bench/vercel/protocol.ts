/**
 * Messages between the benchmark and its Vercel stand-in child (bench/vercel/standin-child.ts), over the IPC
 * channel of a forked process. Every request carries an id its answer repeats.
 */
export interface StandinSettings {
  token: string;
  team: { id: string; slug: string };
  queueMs: number;
  buildMs: number;
  promoteMs: number;
}

export type StandinRequest =
  { op: 'add-projects'; names: string[] } | { op: 'state'; names: string[]; since: number } | { op: 'close' };

export type StandinRequestMessage = StandinRequest & { id: number };

/** What one project serves right now, read from the stand-in's own state. */
export interface ProjectState {
  /** the production deployment */
  production: string | null;
  /** the release the production deployment was created for (its meta.hdRelease) */
  release: string | null;
  /** the deployment each of the project's domains points at, or null when one points elsewhere */
  domains: string | null;
}

export interface StandinStats {
  /** API requests recorded so far (the edge, where health checks go, is not recorded) */
  requests: number;
  /** requests since `since`, by method and path with ids replaced */
  byEndpoint: Record<string, number>;
  /** requests since `since` whose Authorization was not the token */
  badAuth: number;
  /** answers since `since` with status 429 or 5xx */
  throttled: number;
  /** deployments created since `since` (answered 200) */
  deploymentsCreated: number;
  peakBuildsInFlight: number;
  projects: Record<string, ProjectState>;
}

export type StandinReply =
  | { id: number; ok: true; stats?: StandinStats; productions?: Record<string, string> }
  | { id: number; ok: false; error: string };

export interface StandinReady {
  op: 'ready';
  apiUrl: string;
  caFile: string;
}
