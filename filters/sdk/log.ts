/** Logging (reference §3.2): `proxy_log` and `proxy_get_log_level`. */
import { proxy_get_log_level, proxy_log } from "./imports";
import { RET_U32, stage, staged0, staged0Len } from "./memory";
import { LogLevel } from "./types";

/** Logs `message` at `level` through the host (Envoy: `wasm log <plugin> <root_id> <vm_id>: …`). */
export function log(level: LogLevel, message: string): void {
  stage(message);
  proxy_log(<u32>level, staged0, staged0Len);
}

export function logTrace(message: string): void {
  log(LogLevel.Trace, message);
}
export function logDebug(message: string): void {
  log(LogLevel.Debug, message);
}
export function logInfo(message: string): void {
  log(LogLevel.Info, message);
}
export function logWarn(message: string): void {
  log(LogLevel.Warn, message);
}
export function logError(message: string): void {
  log(LogLevel.Error, message);
}
/** Critical lines are what the gateway quotes when a plugin fails to start ("guest said: …"). */
export function logCritical(message: string): void {
  log(LogLevel.Critical, message);
}

/**
 * The host's current log level (ABI 0.2.1): check it before building an expensive message.
 * Hosts without the call (none that load a 0.2.1 module) read as `Trace`.
 */
export function getLogLevel(): LogLevel {
  store<u32>(RET_U32, 0);
  return proxy_get_log_level(RET_U32) == 0 ? <LogLevel>load<u32>(RET_U32) : LogLevel.Trace;
}
