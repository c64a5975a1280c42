/**
 * Active HTTP health checks of one endpoint (Envoy's HTTP health checker): a GET of `path` every
 * `intervalMs`, counted from the end of the previous probe (so at most one probe is in flight per
 * endpoint), plus up to 10% jitter so that the endpoints of a box are not probed in step; the
 * first probe goes within the first tenth of an interval. A probe passes when the answer's status
 * is one of `expectedStatuses` and its body (read and dropped) arrives within `timeoutMs`.
 *
 * Probes go through a client of their own, one connection kept alive per endpoint, as Envoy
 * keeps a health-check connection beside the traffic's: through the endpoint's pool a probe would
 * wait behind the traffic when every connection is busy and fail as a timeout exactly when the
 * endpoint is merely loaded, and it would take a connection from the requests.
 *
 * Timers are unref'd: probes never keep the process alive. `stop()` ends them for good.
 */
import { Client } from 'undici';
import type { HealthCheckConfig } from '../config/schema.js';
import type { CheckResult } from './endpoint-health.js';

const JITTER = 0.1;
const USER_AGENT = 'edge-gateway-health-check';
const MAX_BODY_BYTES = 64 * 1024;

/** Whether `status` is one of `expected` (a status, or a range [start, end)). */
export function expectedStatus(expected: HealthCheckConfig['expectedStatuses'], status: number): boolean {
  for (const e of expected) {
    if (typeof e === 'number' ? status === e : status >= e.start && status < e.end) return true;
  }
  return false;
}

function probeNow(probe: HealthProbe): void {
  void probe.probe();
}

export class HealthProbe {
  private readonly client: Client;
  private readonly headers: Record<string, string>;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: AbortController | null = null;
  private stopped = false;

  /** `report` hears each probe's result and what it saw. Probing starts at once. */
  constructor(origin: URL, private readonly config: HealthCheckConfig, http2: boolean,
    private readonly report: (result: CheckResult, detail: string) => void) {
    this.client = new Client(origin, {
      connect: { timeout: config.timeoutMs },
      headersTimeout: config.timeoutMs,
      bodyTimeout: config.timeoutMs,
      allowH2: http2,
    });
    this.headers = { host: config.host ?? origin.host, 'user-agent': USER_AGENT };
    this.arm(Math.random() * config.intervalMs * JITTER);
  }

  private arm(ms: number): void {
    this.timer = setTimeout(probeNow, ms, this);
    this.timer.unref();
  }

  /** Sends one probe, reports it, and arms the next. */
  async probe(): Promise<void> {
    this.timer = null;
    const abort = this.inFlight = new AbortController();
    const deadline = setTimeout(() => abort.abort(), this.config.timeoutMs);
    deadline.unref();
    let result: CheckResult;
    let detail: string;
    try {
      const res = await this.client.request({ method: 'GET', path: this.config.path, headers: this.headers, signal: abort.signal });
      // Read and dropped; a larger body is cut (the connection with it).
      await res.body.dump({ limit: MAX_BODY_BYTES, signal: abort.signal });
      result = abort.signal.aborted ? 'timeout' : expectedStatus(this.config.expectedStatuses, res.statusCode) ? 'success' : 'failure';
      detail = `status ${res.statusCode}`;
    } catch (err) {
      const e = err as { code?: string; message?: string };
      result = abort.signal.aborted ? 'timeout' : 'network_failure';
      detail = e?.code ?? e?.message ?? String(err);
    } finally {
      clearTimeout(deadline);
      this.inFlight = null;
    }
    if (this.stopped) return;
    if (result === 'timeout') detail = `no answer within ${this.config.timeoutMs} ms`;
    this.report(result, detail);
    this.arm(this.config.intervalMs * (1 + Math.random() * JITTER));
  }

  /** No probe after this one: the timer is cleared, a probe in flight is aborted, the connection closed. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.inFlight?.abort();
    this.client.destroy().catch(() => undefined);
  }
}
