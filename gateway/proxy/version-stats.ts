/**
 * What one module version of a plugin did (the stable one, or a canary beside it): the per-version
 * counters of /plugins and /metrics, and the windowed failure counts that the canary's automatic
 * rollback compares (control/canary-schedule.ts). Plain numbers bumped once per stream, so that a
 * version costs the data plane no more than its counters.
 *
 * A stream fails on a version when the version's filter could not serve it: refused by the
 * failure policy of a failed VM, trapped or ran out of budget while serving it, or answered it
 * locally with a 5xx.
 */
export class VersionStats {
  /** Streams started on this version (refused ones included). */
  streams = 0;
  /** Streams that failed on this version, as above. */
  failed = 0;
  /** The VM failed by a trap (or a stack overflow, proc_exit…), by the CPU budget. */
  traps = 0;
  budgetOverruns = 0;
  /** Local replies of this version's filter, by status class: index 1 for 1xx … 5 for 5xx. */
  readonly localReplies = [0, 0, 0, 0, 0, 0];
  /** Seconds spent in this version's callbacks. */
  filterSeconds = 0;
  /** The current judging window (reset by whoever judges it). */
  windowStreams = 0;
  windowFailed = 0;

  /** A stream starts on this version; `refused` when the failure policy answered it. */
  started(refused: boolean): void {
    this.streams++;
    this.windowStreams++;
    if (refused) this.fail();
  }

  /** The stream is over: what the filter did to it. */
  ended(seconds: number, localReplyStatus: number, failed: boolean): void {
    this.filterSeconds += seconds;
    if (localReplyStatus > 0) this.localReplies[Math.min(5, Math.floor(localReplyStatus / 100))]++;
    if (failed || localReplyStatus >= 500) this.fail();
  }

  vmFailed(code: string): void {
    if (code === 'GW_ERR_ABI_BUDGET') this.budgetOverruns++;
    else this.traps++;
  }

  /** The failure rate of the current window (0 with no stream). */
  get windowRate(): number {
    return this.windowStreams === 0 ? 0 : this.windowFailed / this.windowStreams;
  }

  resetWindow(): void {
    this.windowStreams = 0;
    this.windowFailed = 0;
  }

  private fail(): void {
    this.failed++;
    this.windowFailed++;
  }

  /** For /plugins. */
  report(): Record<string, unknown> {
    const [, c1, c2, c3, c4, c5] = this.localReplies;
    return {
      streams: this.streams, failed: this.failed, traps: this.traps, budgetOverruns: this.budgetOverruns,
      localReplies: { '1xx': c1, '2xx': c2, '3xx': c3, '4xx': c4, '5xx': c5 },
      filterSeconds: Math.round(this.filterSeconds * 1e6) / 1e6,
    };
  }
}
