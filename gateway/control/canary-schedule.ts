/**
 * The canary's clock: one timer (1 s, unref'd) while any plugin runs a canary. Each tick judges
 * every canary's window and moves stepped canaries on.
 *
 * Rollback: over a window of `rollback.windowMs`, once the canary has `minStreams` streams, it is
 * rolled back when its failure rate exceeds the stable version's by more than `margin` (a trapping
 * canary under failurePolicy closed fails every stream it gets, and goes within a tick of its
 * minStreams). Windows are tumbling: both versions' window counts restart together.
 *
 * Steps: with `steps: [5, 25, 100]`, the share moves to the next step once `holdMs` has passed at
 * the current one without a rollback; reaching 100 promotes the canary.
 */
import type { Logger } from '../log.js';
import type { CanarySplit } from '../proxy/canary-split.js';
import type { LivePlugin } from '../proxy/live-plugin.js';

const TICK_MS = 1000;

/** Where a canary stands, for /plugins. */
export interface CanaryProgress {
  readonly step: number | null;
  readonly stepStartedAt: string;
  readonly windowStartedAt: string;
}

interface Progress {
  step: number;
  stepStartedAt: number;
  windowStartedAt: number;
  readonly split: CanarySplit;
}

export interface ScheduleDeps {
  plugins(): Iterable<LivePlugin>;
  promote(name: string, reason: string): Promise<unknown>;
  rollback(name: string, reason: string): Promise<unknown>;
  readonly logger: Logger;
}

export class CanarySchedule {
  private readonly running = new Map<string, Progress>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: ScheduleDeps) {}

  /** A canary runs for `name` (`fresh`: it just started; else a reload kept it, and its progress stays). */
  begin(name: string, split: CanarySplit, fresh: boolean): void {
    const known = this.running.get(name);
    if (!fresh && known !== undefined && known.split === split) return;
    const now = Date.now();
    this.running.set(name, { step: 0, stepStartedAt: now, windowStartedAt: now, split });
    this.timer ??= setInterval(() => this.tick(), TICK_MS).unref();
  }

  end(name: string): void {
    this.running.delete(name);
    if (this.running.size === 0) this.close();
  }

  keepOnly(names: ReadonlySet<string>): void {
    for (const name of this.running.keys()) if (!names.has(name)) this.end(name);
  }

  progress(name: string): CanaryProgress | null {
    const p = this.running.get(name);
    if (p === undefined) return null;
    return {
      step: p.split.rule.steps === undefined ? null : p.step,
      stepStartedAt: new Date(p.stepStartedAt).toISOString(),
      windowStartedAt: new Date(p.windowStartedAt).toISOString(),
    };
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** One pass over the canaries (public for tests that cannot wait for the clock). */
  tick(now = Date.now()): void {
    for (const live of this.deps.plugins()) {
      const canary = live.state.canary;
      const p = this.running.get(live.name);
      if (canary === null || p === undefined) continue;
      const rule = canary.split.rule;
      const c = canary.version.stats;
      const s = live.state.stable.stats;
      if (c.windowStreams >= rule.rollback.minStreams && c.windowRate > s.windowRate + rule.rollback.margin) {
        const reason = `its failure rate ${pct(c.windowRate)} (${c.windowFailed} of ${c.windowStreams} streams) passed the stable version's ${pct(s.windowRate)} by more than ${pct(rule.rollback.margin)}`;
        this.running.delete(live.name);
        this.report(this.deps.rollback(live.name, reason), live.name, 'rollback');
        continue;
      }
      if (now - p.windowStartedAt >= rule.rollback.windowMs) {
        c.resetWindow();
        s.resetWindow();
        p.windowStartedAt = now;
      }
      const steps = rule.steps;
      if (steps === undefined || now - p.stepStartedAt < rule.holdMs) continue;
      const next = steps.findIndex((percent) => percent > canary.split.percent);
      if (next === -1 || steps[next] >= 100) {
        this.running.delete(live.name);
        this.report(this.deps.promote(live.name, `its last step held ${rule.holdMs} ms without a rollback`), live.name, 'promote');
        continue;
      }
      canary.split.percent = steps[next];
      p.step = next;
      p.stepStartedAt = now;
      this.deps.logger.info({ plugin: live.name, percent: steps[next], step: next }, `plugin ${live.name}: canary moved to ${steps[next]}% of new streams`);
    }
    if (this.running.size === 0) this.close();
  }

  private report(done: Promise<unknown>, plugin: string, what: string): void {
    done.catch((err: unknown) => this.deps.logger.error({ plugin, err: (err as Error)?.message ?? String(err) }, `plugin ${plugin}: automatic ${what} failed`));
  }
}

const pct = (rate: number): string => `${(rate * 100).toFixed(1)}%`;
