/**
 * What the primary and its workers say to each other over IPC, besides shared data (hub.ts) and
 * prom-client's metric requests. `edge` tells the kinds apart.
 */
export type ControlMessage =
  /** A worker is serving: its bound listeners ("address:port" by name). */
  | { edge: 'ready'; listeners: Record<string, string> }
  /** The primary asks a worker for its /plugins report; the worker answers with `plugins`. */
  | { edge: 'plugins?'; id: number }
  | { edge: 'plugins'; id: number; report: unknown };

/** The environment variable that makes a process a worker of a box, and its index (0-based). */
export const WORKER_ENV = 'EDGE_GATEWAY_WORKER';

export function isControl(m: unknown): m is ControlMessage {
  const edge = (m as { edge?: unknown } | null)?.edge;
  return edge === 'ready' || edge === 'plugins?' || edge === 'plugins';
}
