/**
 * Binding and closing the gateway's servers (the public listeners and the admin listener), with
 * errors that say which server of the configuration failed, and no error dropped on the way down.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './log.js';

/**
 * Binds `server`. A failure keeps Node's error (its `code`, e.g. EADDRINUSE) but says which
 * listener of the configuration could not bind where, which Node's own message does not.
 */
export function listen(server: Server, port: number, address: string, what: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException): void => {
      err.message = `${what} cannot listen on ${address}:${port}: ${err.message}`;
      reject(err);
    };
    server.once('error', failed);
    server.listen(port, address, () => {
      server.off('error', failed);
      resolve(server.address() as AddressInfo);
    });
  });
}

/**
 * Stops `server` accepting and resolves once it has closed (its open connections are the
 * caller's to end). Never rejects: the stop goes on, and a close error is logged with `what`.
 * A server that never bound (its listen failed, already reported) has nothing to close.
 */
export function closeServer(server: Server, what: string, logger: Logger): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close((err) => {
      if (err !== undefined) logger.error({ err: err.message, code: (err as NodeJS.ErrnoException).code }, `closing ${what} failed`);
      resolve();
    });
  });
}
