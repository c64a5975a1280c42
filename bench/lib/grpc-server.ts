/**
 * The gRPC server of bench/grpc.ts, in a process of its own (forked with IPC): node:http2 h2c on
 * 127.0.0.1:0 with one unary method, ECHO_PATH, which answers ECHO_MESSAGE with the same bytes
 * and `grpc-status: 0` in the trailers. Anything else (another path or message) is answered with a
 * trailers-only status 3 or 12, and counted as bad.
 *
 * h2load, the load generator, reads neither trailers nor bodies, so this server is the judge of
 * what a call got: the bench asks it (IPC `count`) for how many calls it answered with status 0
 * and how many it refused, before and after each run. A call the client saw as 2xx that this
 * server did not answer was made up by the gateway (a trailers-only 14 keeps `:status` 200).
 *
 * The stamp filter's request header `x-edge-stamp` comes back as `x-seen-stamp`, for the checks.
 */
import { createServer, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { ECHO_MESSAGE, ECHO_PATH, deframe, frame } from './grpc.js';

const ANSWER = frame(ECHO_MESSAGE);
const OK_TRAILERS = { 'grpc-status': '0' };
let ok = 0;
let bad = 0;

function refuse(stream: ServerHttp2Stream, status: number, message: string): void {
  bad++;
  stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(status), 'grpc-message': encodeURIComponent(message) }, { endStream: true });
}

function echo(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  stream.on('end', () => {
    const messages = deframe(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    if (messages === null || messages.length !== 1 || !messages[0].equals(ECHO_MESSAGE)) return refuse(stream, 3, 'not the echo message');
    const stamp = headers['x-edge-stamp'];
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...(stamp === undefined ? {} : { 'x-seen-stamp': stamp }) }, { waitForTrailers: true });
    stream.on('wantTrailers', () => {
      ok++;
      stream.sendTrailers(OK_TRAILERS);
    });
    stream.end(ANSWER);
  });
}

// No stream limit from this side: the gateway's 100 per connection (and h2load's -m) apply.
const server = createServer({ settings: { maxConcurrentStreams: 1000 } });
server.on('stream', (stream, headers) => {
  stream.on('error', () => undefined);
  if (headers[':path'] !== ECHO_PATH || headers[':method'] !== 'POST') {
    stream.resume();
    return refuse(stream, 12, `no method ${String(headers[':path'])}`);
  }
  echo(stream, headers);
});
server.on('sessionError', () => undefined);
server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port }));

process.on('message', (m: { count?: boolean }) => {
  if (m.count === true) process.send!({ ok, bad });
});
process.on('disconnect', () => process.exit(0));
