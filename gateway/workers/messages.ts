/**
 * What the primary and its workers say to each other over IPC, besides shared data (hub.ts) and
 * prom-client's metric requests. `edge` tells the kinds apart.
 */
import type { AdminAnswer, AdminCall } from '../control/admin-api.js';

export type ControlMessage =
  /** A worker is serving: its bound listeners ("address:port" by name). */
  | { edge: 'ready'; listeners: Record<string, string> }
  /** A call of the plugin API, forwarded by the primary (reads to one worker, changes to each); the worker answers with `admin`. */
  | { edge: 'admin?'; id: number; call: AdminCall }
  | { edge: 'admin'; id: number; answer: AdminAnswer };

/** The environment variable that makes a process a worker of a box, and its index (0-based). */
export const WORKER_ENV = 'EDGE_GATEWAY_WORKER';

export function isControl(m: unknown): m is ControlMessage {
  const edge = (m as { edge?: unknown } | null)?.edge;
  return edge === 'ready' || edge === 'admin?' || edge === 'admin';
}
