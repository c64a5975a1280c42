/**
 * What bench/report.ts writes to bench/report/results.json, and what the HTML page and the summary
 * table are made from: every raw figure, per round, so that a later reader can recompute any
 * statistic without running the bench again.
 */
import type { Run } from '../lib/processes.js';

/** The machine and the software the figures were measured with. */
export interface Machine {
  cpuModel: string;
  cores: number;
  memoryGb: number;
  /** The distribution's name (PRETTY_NAME of /etc/os-release) and the kernel. */
  os: string;
  kernel: string;
  node: string;
  v8: string;
  /** Versions of the packages installed in node_modules (undici is what the gateway forwards with). */
  undici: string;
  httpProxy3: string;
  autocannon: string;
  /** `nginx -v` and `haproxy -v`, or null when not installed. */
  nginx: string | null;
  haproxy: string | null;
  /** The commit checked out (the working tree may differ from it). */
  commit: string;
  /** Whether the processes under test could be pinned to one core (two cores and taskset). */
  pinned: boolean;
}

/** The knobs of the run (BENCH_* environment variables; bench/report-lib/options.ts). */
export interface ReportSettings {
  quick: boolean;
  rounds: number;
  /** Per run: seconds of unmeasured load, then seconds measured. */
  warmupS: number;
  durationS: number;
  connections: number;
  /** Requests each warm process gets once, before the rounds (a fresh Node process runs its request path interpreted). */
  processWarmup: number;
  /** The same for the edge function, which answers a few hundred requests a second where a proxy answers thousands. */
  functionWarmup: number;
  /** Spawns per target for the cold-start figure. */
  coldStarts: number;
  rssIntervalMs: number;
}

/** One spawn of a fresh process until it proxied its first 200. */
export interface ColdStart {
  /** From spawn() to the end of the first 200 answer through the process. */
  ms: number;
  /** The successful request alone (the earlier ones were refused: nothing listened yet). */
  firstRequestMs: number;
}

/** One measured run of a target in one round: the proxy bench's Run, and when it ran. */
export interface RoundRun extends Run {
  /** Seconds since the start of the RSS timeline: the load generator's start and end. */
  fromS: number;
  toS: number;
}

export type TargetStatus = 'measured' | 'not installed';

export interface TargetResult {
  id: string;
  label: string;
  /** The gateway in some set-up, or a proxy a user would pick instead. */
  group: 'gateway' | 'peer';
  status: TargetStatus;
  /** Pinned to one core; false for `workers: 2`, which needs both. */
  pinned: boolean;
  /** Something a reader must know to read this target's figures. */
  note?: string;
  /** RSS of the process (and its children) once started and checked, before any load, MB. */
  idleRssMb: number;
  /** Spawn → first 200 of the process the rounds measured, the first start of the run (for a function, jco transpiles then). */
  firstStartMs: number;
  coldStarts: ColdStart[];
  runs: RoundRun[];
}

/** RSS of every live target at one moment, MB by target id. */
export interface RssSample {
  /** Seconds since the start of the timeline (the first process warm-up). */
  t: number;
  mb: Record<string, number>;
  /** The target the load generator was sending to, if any. */
  active: string | null;
  /** `warm-up`: the processes' one-time warm-up; `rounds`: the measured rounds. */
  phase: 'warm-up' | 'rounds';
}

export interface ReportResults {
  startedAt: string;
  finishedAt: string;
  durationS: number;
  machine: Machine;
  settings: ReportSettings;
  /** In the order the report shows them; the no-filter gateway is the first. */
  targets: TargetResult[];
  rss: RssSample[];
  /** The 1-minute load average at the start and at the end of the run. */
  loadAverage: { start: number; end: number };
}

/** The id of the baseline of every gateway ratio, and of the proxy every ratio is also taken against. */
export const GATEWAY_BASELINE = 'gw-none';
export const PROXY_BASELINE = 'undici';
