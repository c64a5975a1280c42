/**
 * Callout answers routed by the SDK (test/filters/fixtures/callout): the host delivers every answer
 * to the root (`proxy_on_http_call_response(root_id, token, …)`), and the SDK hands it to the
 * context that dispatched the call, after `proxy_set_effective_context(stream)` when that is an
 * HttpContext, as the Rust SDK's dispatcher does. Callouts go through the real node:http / h2c
 * ports of test/helpers/http-callouts.ts to servers on port 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeadersAction, LogLevel, Status } from '../../gateway/abi/enums.js';
import type { HttpCallRequest, HttpCallResponse } from '../../gateway/abi/ports.js';
import { TestStream, text, until } from '../helpers/host.js';
import {
  NodeCallouts, refusingUrl, startGrpcServer, startHttpServer, type SeenRequest, type TestServer,
} from '../helpers/http-callouts.js';
import { bootGuest } from './sdk-guests.js';

class RecordingCallouts extends NodeCallouts {
  readonly calls: HttpCallRequest[] = [];
  override httpCall(req: HttpCallRequest, done: (res: HttpCallResponse | null) => void): Status {
    const status = super.httpCall(req, done);
    if (status === Status.OK) this.calls.push(req);
    return status;
  }
}

let auth: TestServer;
let grpc: TestServer;
let refused: string;
const seen: SeenRequest[] = [];

beforeAll(async () => {
  auth = await startHttpServer((req, res) => {
    if (req.path === '/root') res.writeHead(200).end('for the root');
    else if (req.headers['x-token']?.toString().startsWith('good')) setTimeout(() => res.writeHead(200).end(`user of ${req.headers['x-token']}`), 10);
    else res.writeHead(401).end('who are you');
  }, seen);
  grpc = await startGrpcServer((call) => {
    const message = Buffer.from(call.message ?? []).toString();
    return message === 'fail' ? { status: 5, statusMessage: 'no such thing' } : { status: 0, message: Buffer.from(`echo: ${message}`) };
  });
  refused = await refusingUrl();
});

afterAll(async () => {
  await auth.close();
  await grpc.close();
});

function start(configuration = '') {
  const callouts = new RecordingCallouts({ auth: auth.url, grpc: grpc.url, down: refused });
  const g = bootGuest('callout', { callouts });
  const root = g.vm.createRoot({ name: 'gate', rootId: 'callout', configuration: text(configuration) });
  return { ...g, root, callouts };
}

function request(g: ReturnType<typeof start>, headers: Array<[string, string]>) {
  const host = new TestStream([[':method', 'GET'], [':path', '/resource'], ...headers]);
  const stream = g.vm.createStream(g.root, host);
  return { host, stream, action: stream.onRequestHeaders(headers.length + 2, true) };
}

describe('callout answers routed by the SDK', () => {
  it('hands an http-call answer to the HttpContext that made the call, made effective: it edits that request and resumes it', async () => {
    const g = start();
    const a = request(g, [['x-token', 'good-a']]);
    const b = request(g, [['x-token', 'good-b']]);
    expect([a.action, b.action]).toEqual([HeadersAction.STOP_ALL, HeadersAction.STOP_ALL]);
    expect(g.callouts.calls.map((c) => [c.cluster, c.headers, Buffer.from(c.body).toString(), c.timeoutMs])).toEqual([
      ['auth', [':method', 'GET', ':path', '/check', ':authority', 'auth', 'x-token', 'good-a'], 'ping', 5000],
      ['auth', [':method', 'GET', ':path', '/check', ':authority', 'auth', 'x-token', 'good-b'], 'ping', 5000],
    ]);

    await until(() => a.host.actions.length > 0 && b.host.actions.length > 0);
    expect(a.host.actions).toEqual(['continue:0']);
    expect(b.host.actions).toEqual(['continue:0']);
    // Each answer landed on its own request (map 0 of the effective context), with its own token.
    expect(a.host.maps[0]!.getAll('x-auth')).toEqual(['user of good-a']);
    expect(b.host.maps[0]!.getAll('x-auth')).toEqual(['user of good-b']);
    expect(a.host.maps[0]!.get('x-auth-token')).toBe('match');
    expect(b.host.maps[0]!.get('x-auth-token')).toBe('match');
    expect(g.vm.failed).toBe(false);
    a.stream.finish();
    b.stream.finish();
  });

  it('answers locally from the callback when the authorization server refuses', async () => {
    const g = start();
    const { host } = request(g, [['x-token', 'bad']]);
    await until(() => host.actions.length > 0);
    expect(host.actions).toEqual(['local:403']);
    expect(host.localResponse).toMatchObject({ status: 403, headers: ['x-auth-status', '401'] });
    expect(Buffer.from(host.localResponse!.body).toString()).toBe('denied: who are you');
  });

  it('reports a failed call (0 headers) with the callout status 11 "reset"', async () => {
    const g = start();
    const { host } = request(g, [['x-cluster', 'down']]);
    await until(() => host.actions.length > 0);
    expect(host.actions).toEqual(['local:502']);
    expect(Buffer.from(host.localResponse!.body).toString()).toBe('callout failed: 11 reset');
  });

  it('gets the host refusal back from dispatchHttpCall (unknown cluster → BAD_ARGUMENT) and tracks no token', () => {
    const g = start();
    const { host } = request(g, [['x-cluster', 'nowhere']]);
    expect(host.actions).toEqual(['local:500']);
    expect(Buffer.from(host.localResponse!.body).toString()).toBe('dispatch failed: BAD_ARGUMENT');
    expect(g.vm.calls.size).toBe(0);
  });

  it("hands a root's own call back to the root", async () => {
    const g = start('root-call');
    await until(() => g.logger.messages().some((m) => m.startsWith('root response')));
    expect(g.logger.lines.filter((l) => l.level >= LogLevel.INFO).map((l) => l.message)).toEqual([
      'root dispatched OK',
      'root response status=200 body=for the root',
    ]);
  });

  it('drops the answer for a request that finished before it came, and stays healthy', async () => {
    const g = start();
    const { host, stream } = request(g, [['x-token', 'good-late']]);
    stream.finish();
    await until(() => g.vm.calls.size === 0);
    await new Promise((r) => setTimeout(r, 20));
    expect(host.actions).toEqual([]);
    expect(g.vm.failed).toBe(false);
    expect(g.logger.lines.filter((l) => l.level >= LogLevel.WARN)).toEqual([]);
    // The SDK still works: the next request is served.
    const next = request(g, [['x-token', 'good-next']]);
    await until(() => next.host.actions.length > 0);
    expect(next.host.maps[0]!.get('x-auth')).toBe('user of good-next');
  });

  it('hands a unary gRPC answer to the HttpContext that made the call, and a gRPC error with its status and message', async () => {
    const g = start();
    const ok = request(g, [['x-grpc', 'hello']]);
    const failed = request(g, [['x-grpc', 'fail']]);
    await until(() => ok.host.actions.length > 0 && failed.host.actions.length > 0);
    expect(ok.host.actions).toEqual(['continue:0']);
    expect(ok.host.maps[0]!.get('x-grpc-reply')).toBe('echo: hello');
    expect(ok.host.maps[0]!.get('x-grpc-token')).toBe('match');
    expect(failed.host.actions).toEqual(['local:503']);
    expect(Buffer.from(failed.host.localResponse!.body).toString()).toBe('grpc 5: no such thing');
    expect(g.vm.failed).toBe(false);
  });
});
