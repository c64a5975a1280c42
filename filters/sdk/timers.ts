/** Time and timers (reference §3.3). */
import { proxy_get_current_time_nanoseconds, proxy_set_tick_period_milliseconds } from "./imports";
import { RET_U64 } from "./memory";
import { Status } from "./types";

/** Wall-clock time in nanoseconds since the Unix epoch (hosts may freeze it during a callback). */
export function getCurrentTimeNanoseconds(): u64 {
  store<u64>(RET_U64, 0);
  proxy_get_current_time_nanoseconds(RET_U64);
  return load<u64>(RET_U64);
}

/**
 * Sets the calling root's timer: `RootContext.onTick` runs every `periodMs` (first one period
 * from now); 0 stops it. From an HTTP context it sets that context's root timer.
 */
export function setTickPeriodMilliseconds(periodMs: u32): Status {
  return <Status>proxy_set_tick_period_milliseconds(periodMs);
}
