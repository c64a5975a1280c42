/**
 * The admin listener (loopback by default): /healthz (the process answers), /readyz (200 once
 * every plugin and service has started and every listener is bound, 503 while starting or
 * draining), /metrics (Prometheus text), /plugins (what runs, and its health) and /clusters (the
 * health of each upstream endpoint; answered by `routes`, with the plugin API).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface AdminSources {
  /** The Prometheus text (a prom-client Registry, or the box's aggregate of its workers'). */
  readonly metrics: { metrics(): Promise<string>; readonly contentType: string };
  /** null when ready, else why not (starting, draining…). */
  notReadyReason(): string | null;
  plugins(): unknown;
  /** Answers the paths it owns (the plugin API) and returns true; false leaves the path to the pages here. */
  routes?(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

async function handle(sources: AdminSources, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (sources.routes !== undefined && await sources.routes(req, res)) return;
  const path = (req.url ?? '/').split('?')[0];
  switch (path) {
    case '/healthz':
      return send(res, 200, 'ok\n');
    case '/readyz': {
      const reason = sources.notReadyReason();
      return reason === null ? send(res, 200, 'ready\n') : send(res, 503, `not ready: ${reason}\n`);
    }
    case '/metrics':
      return send(res, 200, await sources.metrics.metrics(), sources.metrics.contentType);
    case '/plugins':
      return send(res, 200, `${JSON.stringify(await sources.plugins(), null, 2)}\n`, 'application/json');
    default:
      return send(res, 404, 'not found: try /healthz /readyz /metrics /plugins /clusters\n');
  }
}

export function createAdminServer(sources: AdminSources): Server {
  return createServer((req, res) => {
    handle(sources, req, res).catch((err: Error) => send(res, 500, `${err.message}\n`));
  });
}
