/**
 * Logging: one pino logger for the process, JSON lines. Guest logs arrive through the ABI's
 * logger port and keep the guest's exact message, with the plugin name, root id and VM id.
 */
import { once } from 'node:events';
import { pino, type Logger, type DestinationStream } from 'pino';
import { LOG_LEVEL_NAMES, LogLevel } from './abi/enums.js';
import type { AbiLogger, PluginOrigin } from './abi/ports.js';

export type LogLevelName = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export type { Logger };

/**
 * Lines carry the level's name (`"level":"warn"`), not pino's number: log pipelines and people
 * filter on names, as they do for Envoy's and nginx's logs.
 */
export function createLogger(level: LogLevelName = 'info', destination?: DestinationStream): Logger {
  return pino({
    level,
    base: { service: 'edge-gateway' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  }, destination);
}

/** Standard output for the process's log lines: pino's asynchronous writer, as pino uses by default. */
export function stdoutDestination(): ReturnType<typeof pino.destination> {
  return pino.destination({ dest: 1, sync: false });
}

/**
 * The line a process that cannot start ends with, written at once (synchronously, as the process
 * exits next): `{"level":"fatal", "code", "err", "msg"}`, so a log pipeline sees why a node never
 * came up, beside the human message on stderr. Extra `fields` may name the error's `problems`.
 */
export function logFatal(code: string | null, message: string, fields: Record<string, unknown> = {}): void {
  createLogger('info', pino.destination({ dest: 1, sync: true })).fatal({ code, err: message, ...fields }, 'edge-gateway could not start');
}

/**
 * Resolves once every line given to `destination` has been written, in order (at most `timeoutMs`).
 * NB: exiting while an asynchronous write is in flight lets pino's exit handler write the lines
 * queued behind it first, so the last lines of a shutdown would reach stdout out of order.
 */
export async function linesWritten(destination: ReturnType<typeof pino.destination>, timeoutMs = 2000): Promise<void> {
  const closed = once(destination, 'close').then(() => undefined, () => undefined);
  destination.end();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([closed, new Promise<void>((r) => { timer = setTimeout(r, timeoutMs); })]);
  clearTimeout(timer);
}

/** pino method per Proxy-Wasm level; critical maps to fatal. */
const METHODS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
const ABI_LEVEL: Readonly<Record<string, LogLevel>> = {
  trace: LogLevel.TRACE, debug: LogLevel.DEBUG, info: LogLevel.INFO, warn: LogLevel.WARN, error: LogLevel.ERROR,
  fatal: LogLevel.CRITICAL, silent: LogLevel.CRITICAL,
};

/** The ABI logger port on top of pino: what `proxy_log` and WASI stdout/stderr write to. */
export function abiLogger(logger: Logger): AbiLogger {
  return {
    level: () => ABI_LEVEL[logger.level] ?? LogLevel.INFO,
    log(level: LogLevel, message: string, origin: PluginOrigin | null): void {
      const fields = origin === null
        ? { source: 'wasm', wasmLevel: LOG_LEVEL_NAMES[level] }
        : { source: 'wasm', plugin: origin.pluginName, rootId: origin.rootId, vmId: origin.vmId, wasmLevel: LOG_LEVEL_NAMES[level] };
      logger[METHODS[level]](fields, message);
    },
  };
}
