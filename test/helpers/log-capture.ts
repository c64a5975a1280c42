/** A real pino logger whose JSON lines are kept for assertions instead of written out. */
import { Writable } from 'node:stream';
import { createLogger, type Logger, type LogLevelName } from '../../gateway/log.js';

export interface CapturedLog {
  readonly logger: Logger;
  readonly lines: Array<Record<string, unknown>>;
  /** Resolves once pino's pending writes have reached the sink (a Writable is called on a later tick). */
  flushed(): Promise<void>;
}

export function captureLog(level: LogLevelName = 'debug'): CapturedLog {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger(level, sink), lines, flushed: () => new Promise((r) => setImmediate(r)) };
}
