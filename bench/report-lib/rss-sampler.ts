/**
 * RSS of every warm target over time, for the memory chart and the "under load" figures: one
 * read of /proc per process every `intervalMs`, in this driver (which runs on the load
 * generator's core), tagged with the target the load generator is sending to at that moment.
 */
import type { RssSample } from './results.js';
import { treeRssMb } from './proc-tree.js';

export class RssSampler {
  readonly samples: RssSample[] = [];
  /** The target under load now (set by the runs), or null. */
  active: string | null = null;
  phase: RssSample['phase'] = 'warm-up';
  private t0 = performance.now();
  private timer: NodeJS.Timeout | undefined;

  /** `pids`: the main process of each target, by id. */
  constructor(private readonly pids: ReadonlyMap<string, number>, private readonly intervalMs: number) {}

  /** Seconds since start(). */
  now(): number {
    return (performance.now() - this.t0) / 1000;
  }

  start(): void {
    this.t0 = performance.now();
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private sample(): void {
    const mb: Record<string, number> = {};
    for (const [id, pid] of this.pids) mb[id] = Math.round(treeRssMb(pid) * 10) / 10;
    this.samples.push({ t: Math.round(this.now() * 1000) / 1000, mb, active: this.active, phase: this.phase });
  }
}
