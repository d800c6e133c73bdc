import type { DeployStatus, ErrorInfo, EscalationReport, HealthReport, StepReport } from '../report/types';

/** Progress events: the CLI prints them, the action groups them, tests and the demo can react to them. */
export type DeployEvent =
  | { type: 'run-start'; project: string; release: string; commit: string; phases: string[] }
  | { type: 'phase-start'; phase: string; hosts: string[] }
  | { type: 'phase-end'; phase: string; ok: boolean; durationMs: number; error?: ErrorInfo }
  | { type: 'host-step'; phase: string; host: string; step: StepReport }
  | { type: 'host-health'; phase: string; host: string; health: HealthReport }
  | {
      type: 'host-end';
      phase: string;
      host: string;
      ok: boolean;
      durationMs: number;
      error?: ErrorInfo;
      attempt: number;
    }
  | { type: 'retry'; phase: string; host: string; attempt: number; delayMs: number; error: ErrorInfo }
  | { type: 'tests'; phase: string; on: string; ok: boolean; exitCode: number | null; durationMs: number }
  | { type: 'rollback'; phase: string; host: string; ok: boolean; to: string | null; error?: ErrorInfo }
  | { type: 'log'; level: 'info' | 'warn'; message: string }
  | { type: 'wave-start'; phase: string; wave: number; waves: number; targets: number }
  | {
      type: 'wave-progress';
      phase: string;
      wave: number;
      done: number;
      failed: number;
      running: number;
      total: number;
      /** Targets finished per minute so far in this wave. */
      perMinute: number;
      etaSeconds?: number;
    }
  | {
      type: 'wave-end';
      phase: string;
      wave: number;
      ok: number;
      failed: number;
      notStarted: number;
      durationMs: number;
      stopped?: string;
    }
  | { type: 'escalation'; escalation: EscalationReport }
  | { type: 'run-end'; status: DeployStatus; durationSeconds: number };

export type EventListener = (e: DeployEvent) => void | Promise<void>;
