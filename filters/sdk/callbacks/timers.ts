/** The root context's timer and queue callbacks (onTick after setTickPeriodMilliseconds, onQueueReady). */
import { rootOf } from "./dispatch";

export function proxy_on_tick(rootId: u32): void {
  rootOf(rootId, "proxy_on_tick").onTick();
}

export function proxy_on_queue_ready(rootId: u32, queueId: u32): void {
  rootOf(rootId, "proxy_on_queue_ready").onQueueReady(queueId);
}
