/**
 * Single requests of the transport bench's checks (bench/transport.ts): HTTPS over HTTP/1.1, h2
 * through ALPN and h2c with prior knowledge, each verifying the bench's certificate for
 * `localhost` and reporting what was negotiated. Each is bounded at 5 s.
 */
import { connect as h2Connect, type ClientSessionOptions, type SecureClientSessionOptions } from 'node:http2';
import { request } from 'node:https';
import type { TLSSocket } from 'node:tls';

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** `TLSv1.3 TLS_AES_256_GCM_SHA384 h2`, or `cleartext`. */
  negotiated: string;
}

const negotiated = (s: TLSSocket): string => `${s.getProtocol() ?? '?'} ${s.getCipher()?.name ?? '?'} ${s.alpnProtocol || 'no ALPN'}`;

/** GET `path` over HTTPS/1.1 (a new connection, no ALPN offered, as autocannon), trusting `ca` only. */
export function https1Get(port: number, path: string, ca: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, path, servername: 'localhost', ca, agent: false, headers, timeout: 5000,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString(), negotiated: negotiated(res.socket as TLSSocket) }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} on https port ${port} timed out after 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** GET `path` over HTTP/2: h2 through ALPN with `ca`, or h2c with prior knowledge without. */
export function h2Get(port: number, path: string, ca: string | undefined, headers: Record<string, string> = {}): Promise<Answer> {
  const options: ClientSessionOptions | SecureClientSessionOptions = ca === undefined ? {} : { ca, servername: 'localhost' };
  const session = h2Connect(`${ca === undefined ? 'http' : 'https'}://127.0.0.1:${port}`, options);
  return new Promise<Answer>((resolve, reject) => {
    const timer = setTimeout(() => session.destroy(new Error(`h2 GET ${path} on port ${port} timed out after 5 s`)), 5000);
    session.on('error', reject);
    const stream = session.request({ ':path': path, ...headers });
    const chunks: Buffer[] = [];
    let answer: Answer['headers'] = {};
    stream.on('response', (h) => { answer = h; });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', reject);
    stream.on('end', () => {
      clearTimeout(timer);
      const socket = session.socket as TLSSocket;
      resolve({
        status: Number(answer[':status']), headers: answer, body: Buffer.concat(chunks).toString(),
        negotiated: ca === undefined ? 'cleartext h2c' : negotiated(socket),
      });
    });
  }).finally(() => session.close());
}
