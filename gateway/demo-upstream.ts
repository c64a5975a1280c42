/**
 * A small upstream for the quick start and the benchmarks: it echoes what it received (method,
 * path, the headers the gateway forwarded, body size) as JSON, so the effect of filters is visible
 * with curl. `/bytes/N` answers N bytes; `/delay/MS` answers after MS milliseconds.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export function createDemoUpstream(): Server {
  return createServer((req, res) => {
    const url = req.url ?? '/';
    const bytes = /^\/bytes\/(\d+)/.exec(url);
    if (bytes !== null) {
      const n = Math.min(Number(bytes[1]), 64 * 1024 * 1024);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
      res.end(Buffer.alloc(n, 0x61));
      return;
    }
    let size = 0;
    req.on('data', (chunk: Buffer) => { size += chunk.length; });
    req.on('end', () => {
      const body = JSON.stringify({ method: req.method, path: url, headers: req.headers, bodyBytes: size });
      const delay = /^\/delay\/(\d+)/.exec(url);
      const send = (): void => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-upstream': 'demo' });
        res.end(body);
      };
      if (delay !== null) setTimeout(send, Math.min(Number(delay[1]), 60_000));
      else send();
    });
  });
}

export function startDemoUpstream(port: number, host = '127.0.0.1'): Promise<{ server: Server; address: AddressInfo }> {
  const server = createDemoUpstream();
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve({ server, address: server.address() as AddressInfo }));
  });
}
