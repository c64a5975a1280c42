/**
 * The reference row of bench/grpc.ts: the least a Node process does to proxy a gRPC call, in a
 * process of its own (forked with IPC, `h2-proxy.ts PORT`). An h2c server whose every stream is
 * forwarded on one h2c session to 127.0.0.1:PORT: the client's headers as they are, the body
 * chunk by chunk, then the response headers, body and trailers back. No routing, no header
 * rewriting, no filters, no retries, no metrics. What the gateway costs above this row is its own;
 * what this row costs above `direct` is node:http2's, on both sides of a proxy.
 */
import { connect, constants, createServer, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';

const target = Number(process.argv[2]);
const upstream = connect(`http://127.0.0.1:${target}`);
upstream.on('error', () => undefined);

const server = createServer({ settings: { maxConcurrentStreams: 1000 } });
server.on('stream', (stream, headers) => {
  stream.on('error', () => undefined);
  const up = upstream.request(headers as OutgoingHttpHeaders);
  up.on('error', () => { if (!stream.destroyed) stream.close(constants.NGHTTP2_INTERNAL_ERROR); });
  stream.on('close', () => { if (!up.destroyed) up.close(constants.NGHTTP2_CANCEL); });
  let trailers: IncomingHttpHeaders = {};
  stream.on('data', (chunk: Buffer) => up.write(chunk));
  stream.on('end', () => up.end());
  up.on('response', (h) => stream.respond(h as OutgoingHttpHeaders, { waitForTrailers: true }));
  up.on('data', (chunk: Buffer) => stream.write(chunk));
  up.on('trailers', (t) => { trailers = t; });
  up.on('end', () => stream.end());
  stream.on('wantTrailers', () => stream.sendTrailers(trailers as OutgoingHttpHeaders));
});
server.on('sessionError', () => undefined);
server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port }));
process.on('disconnect', () => process.exit(0));
