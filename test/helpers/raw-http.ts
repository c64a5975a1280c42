/**
 * HTTP/1 on raw sockets: exact bytes out (malformed on purpose), everything that comes back, and
 * whether and when the gateway closed the connection.
 */
import { connect, type Socket } from 'node:net';

export interface RawReply {
  /** Everything received, as latin1 text. */
  readonly data: string;
  /** The status of each response head received, in order. */
  readonly statuses: number[];
  /** The gateway closed the connection (FIN or reset) before the wait ended. */
  readonly closed: boolean;
  /** Milliseconds from the first write to the close (or to the end of the wait). */
  readonly ms: number;
}

// Anywhere: a pipelined response follows a body that need not end in CRLF.
const STATUS_LINE = /HTTP\/1\.[01] (\d{3}) /g;

/** The status of every response head in `data`. */
export function statusesOf(data: string): number[] {
  return [...data.matchAll(STATUS_LINE)].map((m) => Number(m[1]));
}

/**
 * Sends `chunks` on a fresh connection to 127.0.0.1:`port` (a number between chunks is a pause
 * in ms) and collects the answer until the gateway closes or `waitMs` after the last write.
 */
export function rawExchange(port: number, chunks: Array<string | Buffer | number>, waitMs = 2000): Promise<RawReply> {
  return new Promise((resolve) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let data = '';
    let closed = false;
    let started = 0;
    let timer: NodeJS.Timeout | null = null;
    const finish = (): void => {
      if (timer !== null) clearTimeout(timer);
      timer = null;
      socket.destroy();
      resolve({ data, statuses: statusesOf(data), closed, ms: Date.now() - started });
    };
    socket.on('data', (d: Buffer) => { data += d.toString('latin1'); });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = timer !== null || closed;
      if (timer !== null) finish();
    });
    socket.once('connect', async () => {
      started = Date.now();
      for (const chunk of chunks) {
        if (socket.destroyed) break;
        if (typeof chunk === 'number') await new Promise((r) => setTimeout(r, chunk));
        else socket.write(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
      }
      if (socket.destroyed) {
        closed = true;
        finish();
        return;
      }
      timer = setTimeout(finish, waitMs);
    });
  });
}

/** A GET that closes the connection after its answer. */
export function get(path: string, host = 'gw.test', extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`;
}
