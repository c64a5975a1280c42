/**
 * The form of the replies the gateway makes up, as Envoy's sendLocalReply decides it: from the
 * request, not from the filter. A gRPC request (content-type application/grpc[+…|;…]) gets a
 * trailers-only gRPC answer; any other request a plain HTTP reply with the filter's status, even
 * when the filter (or its SDK) passed a gRPC status. The fail-closed 503 is Envoy's
 * wasm_fail_stream: empty, the filter named only in the access log.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, startUpstream, wasmFile, type TestGateway } from '../helpers/gateway.js';
import { Guest, send, waitFor } from '../helpers/guests.js';

/** Answers every request locally with `status`, body `body` and gRPC status `grpc` (-1: none). */
function replyFilter(status: number, body: string, grpc: number): string {
  const g = new Guest();
  return g.build({
    log: false,
    on: {
      proxy_on_request_headers: `(drop (call $proxy_send_local_response (i32.const ${status}) ${g.lit('by_filter')} ${g.lit(body)}
        ${g.pairs([['x-local', 'yes']])} (i32.const ${grpc}))) (i32.const 1)`,
    },
  });
}

const TRAP = new Guest().build({ log: false, on: { proxy_on_request_headers: '(unreachable)' } });

describe('local replies', () => {
  let cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup = [];
  });

  async function gateway(wat: string): Promise<TestGateway> {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const gw = await startGateway({
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [{ name: 'f', module: wasmFile(wat, 'f'), failurePolicy: 'closed' }],
      routes: [{ name: 'all', cluster: 'backend', filters: ['f'] }],
    });
    cleanup.push(gw.close);
    return gw;
  }

  it('sends a plain HTTP reply with the filter status to a non-gRPC request even when the filter passed a gRPC status', async () => {
    const gw = await gateway(replyFilter(401, 'who are you', 16));
    for (const contentType of [undefined, 'application/json', 'application/grpc-web', 'application/grpcx']) {
      const reply = await send(`${gw.url}/x`, { headers: contentType ? { 'content-type': contentType } : {} });
      expect([contentType, reply.status, reply.body.toString(), reply.headers['grpc-status'], reply.headers['x-local']])
        .toEqual([contentType, 401, 'who are you', undefined, 'yes']);
    }
  });

  it('answers a gRPC request trailers-only: 200, grpc-status as given, grpc-message from the body, no body', async () => {
    const gw = await gateway(replyFilter(403, 'no entry here', 7));
    for (const contentType of ['application/grpc', 'application/grpc+proto', 'application/grpc;charset=utf-8']) {
      const reply = await send(`${gw.url}/svc.S/M`, { method: 'POST', headers: { 'content-type': contentType } });
      expect([reply.status, reply.headers['content-type'], reply.headers['grpc-status'], reply.headers['grpc-message'], reply.body.length])
        .toEqual([200, 'application/grpc', '7', 'no%20entry%20here', 0]);
      expect(reply.headers['x-local']).toBe('yes');
    }
  });

  it('maps the HTTP status to a gRPC status for a gRPC request when the filter gave none (Envoy httpToGrpcStatus)', async () => {
    for (const [status, grpc] of [[403, '7'], [429, '14'], [401, '16'], [404, '12'], [418, '2']] as const) {
      const gw = await gateway(replyFilter(status, '', -1));
      const reply = await send(`${gw.url}/svc.S/M`, { method: 'POST', headers: { 'content-type': 'application/grpc' } });
      expect([status, reply.status, reply.headers['grpc-status']]).toEqual([status, 200, grpc]);
    }
  });

  it('fails closed with an empty 503 and names the filter in the access log only', async () => {
    const gw = await gateway(TRAP);
    const reply = await send(`${gw.url}/x`, { headers: { 'x-request-id': 'fc' } });
    expect([reply.status, reply.body.length, reply.headers['content-length'], reply.headers['content-type']]).toEqual([503, 0, '0', undefined]);
    await waitFor(() => gw.logs.some((l) => l.access === true && l.requestId === 'fc'), 'access log');
    expect(gw.logs.find((l) => l.access === true && l.requestId === 'fc')).toMatchObject({ status: 503, failedFilter: 'f', error: 'wasm_fail_stream' });
  });

  it('fails closed for a gRPC request with grpc-status 14 (UNAVAILABLE), trailers-only', async () => {
    const gw = await gateway(TRAP);
    const reply = await send(`${gw.url}/svc.S/M`, { method: 'POST', headers: { 'content-type': 'application/grpc' } });
    expect([reply.status, reply.headers['content-type'], reply.headers['grpc-status'], reply.body.length]).toEqual([200, 'application/grpc', '14', 0]);
  });
});
