/**
 * End-to-end harness: a real gateway on port 0 (listener and admin) in front of real upstream
 * servers on port 0, filters written as WAT guests and assembled into temp files, and the JSON log
 * lines captured for assertions.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseConfig } from '../../gateway/config/load.js';
import { Gateway } from '../../gateway/gateway.js';
import { createLogger } from '../../gateway/log.js';
import { watToBytes } from './wat.js';

const dir = mkdtempSync(join(tmpdir(), 'edge-gw-test-'));
let counter = 0;

/** Writes a WAT guest as a .wasm file and returns its path. */
export function wasmFile(wat: string, name = 'filter'): string {
  const file = join(dir, `${name}-${counter++}.wasm`);
  writeFileSync(file, watToBytes(wat));
  return file;
}

export interface Upstream {
  server: Server;
  url: string;
  requests: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: Buffer }>;
  close(): Promise<void>;
}

/** A real upstream on port 0; `handler` answers (default: JSON echo of what it received). */
export async function startUpstream(handler?: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void): Promise<Upstream> {
  const requests: Upstream['requests'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      if (handler) return handler(req, res, body);
      const out = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bodyBytes: body.length });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    server, requests, url: `http://127.0.0.1:${port}`,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** An origin nothing listens on (a port the kernel handed out and that was released): connections to it are refused. */
export async function deadOrigin(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

export interface TestGateway {
  gateway: Gateway;
  url: string;
  adminUrl: string;
  logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/**
 * Starts a gateway for `config` (a config document; listeners and admin default to 127.0.0.1:0).
 */
export async function startGateway(config: Record<string, unknown>): Promise<TestGateway> {
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') logs.push(JSON.parse(line));
      cb();
    },
  });
  const doc = {
    listeners: [{ name: 'public', address: '127.0.0.1', port: 0 }],
    admin: { address: '127.0.0.1', port: 0 },
    log: { level: 'debug' },
    ...config,
  };
  const parsed = parseConfig(doc, 'test-config.yaml');
  const gateway = await Gateway.create(parsed, { logger: createLogger(parsed.log.level, sink) });
  const bound = await gateway.start();
  const listener = bound.listeners.get('public')!;
  return {
    gateway, logs,
    url: `http://127.0.0.1:${listener.port}`,
    adminUrl: `http://127.0.0.1:${bound.admin!.port}`,
    close: () => gateway.shutdown(),
  };
}
