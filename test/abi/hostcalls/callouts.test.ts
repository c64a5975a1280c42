import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { GuestFn } from '../../../gateway/abi/callbacks.js';
import type { RootContext } from '../../../gateway/abi/context.js';
import { HeadersAction, Status, type StreamType } from '../../../gateway/abi/enums.js';
import { decodePairs, encodePairs, type Pairs } from '../../../gateway/abi/pairs.js';
import type { Callouts } from '../../../gateway/abi/ports.js';
import { RecordingLogger, TestStream, startVm, until, type TestVm } from '../../helpers/host.js';
import {
  NodeCallouts, refusingUrl, startGrpcServer, startHttpServer, type GrpcAnswer, type SeenGrpcCall, type SeenRequest, type TestServer,
} from '../../helpers/http-callouts.js';
import { guestWat } from '../../helpers/wat.js';

// Guest memory layout: what the guest's callbacks copy out for the test (u32 slots), its static
// inputs, and a log of every callout callback it receives.
const RET_TOKEN = 0x10;
const MAP6_STATUS = 0x20; // proxy_get_header_map_value(6, ":status") → status, ptr, len
const BUF_STATUS = 0x2c; // proxy_get_buffer_bytes(4 or 5, 0, size) → status, ptr, len
const GET_STATUS = 0x38; // proxy_get_status → status, code, ptr, len
const PAIRS6_STATUS = 0x48; // proxy_get_header_map_pairs(6) → status, ptr, len
const EFFECTIVE_STATUS = 0x54; // proxy_set_effective_context(stream)
const CONTINUE_STATUS = 0x58; // proxy_continue_stream(0)
const CLUSTER = 0x100;
const SERVICE = 0x140;
const METHOD = 0x180;
const HEADERS = 0x200;
const BODY = 0x600;
const METADATA = 0x800;
const MESSAGE = 0x900;
const EVENTS = 0x1000; // count, then 6 words per event: code, root_id, token, a, b, c
const POISON = 0xaaaaaaaa;

const EVENT_NAMES = ['', 'http_call_response', 'grpc_receive', 'grpc_close', 'grpc_receive_initial_metadata', 'grpc_receive_trailing_metadata'];

/** A WAT string literal holding exactly `bytes`. */
const watBytes = (bytes: Uint8Array): string => [...bytes].map((b) => `\\${b.toString(16).padStart(2, '0')}`).join('');
const watText = (s: string): string => watBytes(Buffer.from(s, 'latin1'));

interface CalloutGuest {
  cluster?: string;
  headers?: Pairs;
  body?: string;
  timeoutMs?: number;
  service?: string;
  method?: string;
  metadata?: Pairs;
  message?: string;
}

/**
 * A guest whose `call` export makes one proxy_http_call and `grpc` one proxy_grpc_call with the
 * static inputs below, whose stream pauses on request headers after making the call, and whose
 * callout callbacks log their arguments and copy what the host makes readable (map 6, buffers 4/5,
 * proxy_get_status). When a stream made the call, the callback first targets it with
 * proxy_set_effective_context and ends by resuming it with proxy_continue_stream(0).
 */
function calloutGuest(g: CalloutGuest = {}): string {
  const cluster = g.cluster ?? 'backend';
  const headers = encodePairs(g.headers ?? [':method', 'GET', ':path', '/', ':authority', 'backend.local']);
  const body = g.body ?? '';
  const service = g.service ?? 'test.Echo';
  const method = g.method ?? 'Say';
  const metadata = encodePairs(g.metadata ?? []);
  const message = g.message ?? 'ping';
  const timeout = g.timeoutMs ?? 5000;
  return guestWat({
    imports: `
  (import "env" "proxy_http_call" (func $http_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_grpc_call" (func $grpc_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_grpc_cancel" (func $grpc_cancel (param i32) (result i32)))
  (import "env" "proxy_grpc_close" (func $grpc_close (param i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get_map_value (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_pairs" (func $get_map_pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_status" (func $get_status (param i32 i32 i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $set_effective (param i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))`,
    body: `
  (data (i32.const ${CLUSTER}) "${watText(cluster)}")
  (data (i32.const ${SERVICE}) "${watText(service)}")
  (data (i32.const ${METHOD}) "${watText(method)}")
  (data (i32.const ${HEADERS}) "${watBytes(headers)}")
  (data (i32.const ${BODY}) "${watText(body)}")
  (data (i32.const ${METADATA}) "${watBytes(metadata)}")
  (data (i32.const ${MESSAGE}) "${watText(message)}")
  (data (i32.const 0xf00) ":status")
  (data (i32.const 0xf10) "response handled")
  (global $stream (mut i32) (i32.const 0))

  (func $event (param $code i32) (param $root i32) (param $token i32) (param $a i32) (param $b i32) (param $c i32)
    (local $at i32)
    (local.set $at (i32.add (i32.const ${EVENTS + 4}) (i32.mul (i32.load (i32.const ${EVENTS})) (i32.const 24))))
    (i32.store (local.get $at) (local.get $code))
    (i32.store offset=4 (local.get $at) (local.get $root))
    (i32.store offset=8 (local.get $at) (local.get $token))
    (i32.store offset=12 (local.get $at) (local.get $a))
    (i32.store offset=16 (local.get $at) (local.get $b))
    (i32.store offset=20 (local.get $at) (local.get $c))
    (i32.store (i32.const ${EVENTS}) (i32.add (i32.load (i32.const ${EVENTS})) (i32.const 1))))

  (func $read_status
    (i32.store (i32.const ${GET_STATUS})
      (call $get_status (i32.const ${GET_STATUS + 4}) (i32.const ${GET_STATUS + 8}) (i32.const ${GET_STATUS + 12}))))

  (func $read_buffer (param $type i32) (param $size i32)
    (i32.store (i32.const ${BUF_STATUS})
      (call $get_buffer (local.get $type) (i32.const 0) (local.get $size) (i32.const ${BUF_STATUS + 4}) (i32.const ${BUF_STATUS + 8}))))

  (func $call (export "call") (result i32)
    (call $http_call (i32.const ${CLUSTER}) (i32.const ${cluster.length}) (i32.const ${HEADERS}) (i32.const ${headers.length})
      (i32.const ${BODY}) (i32.const ${body.length}) (i32.const 0) (i32.const 0) (i32.const ${timeout}) (i32.const ${RET_TOKEN})))

  (func (export "grpc") (result i32)
    (call $grpc_call (i32.const ${CLUSTER}) (i32.const ${cluster.length}) (i32.const ${SERVICE}) (i32.const ${service.length})
      (i32.const ${METHOD}) (i32.const ${method.length}) (i32.const ${METADATA}) (i32.const ${metadata.length})
      (i32.const ${MESSAGE}) (i32.const ${message.length}) (i32.const ${timeout}) (i32.const ${RET_TOKEN})))
  ;; The same calls with the cluster name cut to $len bytes and the timeout given.
  (func (export "call_with") (param $len i32) (param $timeout i32) (result i32)
    (call $http_call (i32.const ${CLUSTER}) (local.get $len) (i32.const ${HEADERS}) (i32.const ${headers.length})
      (i32.const ${BODY}) (i32.const ${body.length}) (i32.const 0) (i32.const 0) (local.get $timeout) (i32.const ${RET_TOKEN})))
  (func (export "grpc_with") (param $len i32) (param $timeout i32) (result i32)
    (call $grpc_call (i32.const ${CLUSTER}) (local.get $len) (i32.const ${SERVICE}) (i32.const ${service.length})
      (i32.const ${METHOD}) (i32.const ${method.length}) (i32.const ${METADATA}) (i32.const ${metadata.length})
      (i32.const ${MESSAGE}) (i32.const ${message.length}) (local.get $timeout) (i32.const ${RET_TOKEN})))
  (func (export "grpc_cancel") (param $token i32) (result i32) (call $grpc_cancel (local.get $token)))
  (func (export "grpc_close") (param $token i32) (result i32) (call $grpc_close (local.get $token)))

  ;; Reads map 6 and buffer 4 outside of any callback.
  (func (export "map6_now") (result i32)
    (call $get_map_value (i32.const 6) (i32.const 0xf00) (i32.const 7) (i32.const ${MAP6_STATUS + 4}) (i32.const ${MAP6_STATUS + 8})))
  (func (export "buffer4_now") (result i32)
    (call $get_buffer (i32.const 4) (i32.const 0) (i32.const 100) (i32.const ${BUF_STATUS + 4}) (i32.const ${BUF_STATUS + 8})))

  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (global.set $stream (local.get $ctx))
    (drop (call $call))
    (i32.const 1))

  (func (export "proxy_on_http_call_response") (param $root i32) (param $token i32) (param $nh i32) (param $size i32) (param $nt i32)
    (call $event (i32.const 1) (local.get $root) (local.get $token) (local.get $nh) (local.get $size) (local.get $nt))
    (if (global.get $stream)
      (then (i32.store (i32.const ${EFFECTIVE_STATUS}) (call $set_effective (global.get $stream)))))
    (i32.store (i32.const ${MAP6_STATUS})
      (call $get_map_value (i32.const 6) (i32.const 0xf00) (i32.const 7) (i32.const ${MAP6_STATUS + 4}) (i32.const ${MAP6_STATUS + 8})))
    (i32.store (i32.const ${PAIRS6_STATUS})
      (call $get_map_pairs (i32.const 6) (i32.const ${PAIRS6_STATUS + 4}) (i32.const ${PAIRS6_STATUS + 8})))
    (call $read_buffer (i32.const 4) (local.get $size))
    (call $read_status)
    (if (global.get $stream)
      (then
        (i32.store (i32.const ${CONTINUE_STATUS}) (call $continue (i32.const 0)))
        (drop (call $log (i32.const 2) (i32.const 0xf10) (i32.const 16))))))

  (func (export "proxy_on_grpc_receive_initial_metadata") (param $root i32) (param $token i32) (param $n i32)
    (call $event (i32.const 4) (local.get $root) (local.get $token) (local.get $n) (i32.const 0) (i32.const 0)))
  (func (export "proxy_on_grpc_receive") (param $root i32) (param $token i32) (param $size i32)
    (call $event (i32.const 2) (local.get $root) (local.get $token) (local.get $size) (i32.const 0) (i32.const 0))
    (call $read_buffer (i32.const 5) (local.get $size)))
  (func (export "proxy_on_grpc_receive_trailing_metadata") (param $root i32) (param $token i32) (param $n i32)
    (call $event (i32.const 5) (local.get $root) (local.get $token) (local.get $n) (i32.const 0) (i32.const 0)))
  (func (export "proxy_on_grpc_close") (param $root i32) (param $token i32) (param $status i32)
    (call $event (i32.const 3) (local.get $root) (local.get $token) (local.get $status) (i32.const 0) (i32.const 0))
    (call $read_status))`,
  });
}

class Guest {
  readonly root: RootContext;

  constructor(readonly t: TestVm) {
    this.root = t.vm.createRoot({ name: 'callout-plugin', rootId: 'c', configuration: new Uint8Array(0) });
    t.vm.mem.setU32(RET_TOKEN, POISON);
  }

  run(name: string, ...args: number[]): number {
    return this.t.vm.call(this.root, this.t.vm.instance.exports[name] as GuestFn, ...args);
  }

  u32(ptr: number): number {
    return this.t.vm.mem.u32(ptr);
  }

  /** Bytes returned through the (ptr, len) slots at `at`, as a byte string. */
  bytes(at: number): string {
    const ptr = this.u32(at);
    return Buffer.from(this.t.vm.mem.current().subarray(ptr, ptr + this.u32(at + 4))).toString('latin1');
  }

  /** Every callout callback received, as `name(root_id, token, …)`. */
  events(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.u32(EVENTS); i++) {
      const at = EVENTS + 4 + 24 * i;
      const [code, ...args] = [0, 4, 8, 12, 16, 20].map((o) => this.u32(at + o));
      out.push(`${EVENT_NAMES[code]}(${(code === 1 ? args : args.slice(0, 3)).join(', ')})`);
    }
    return out;
  }

  /** status and value of proxy_get_header_map_value(6, ":status") inside the last callback. */
  map6Status(): [number, string] {
    return [this.u32(MAP6_STATUS), this.bytes(MAP6_STATUS + 4)];
  }

  /** status and bytes of proxy_get_buffer_bytes(4 or 5) inside the last callback. */
  buffer(): [number, string] {
    return [this.u32(BUF_STATUS), this.bytes(BUF_STATUS + 4)];
  }

  /** status, code and message of proxy_get_status inside the last callback. */
  getStatus(): [number, number, string] {
    return [this.u32(GET_STATUS), this.u32(GET_STATUS + 4), this.bytes(GET_STATUS + 8)];
  }

  /** Map 6 as the guest read it with proxy_get_header_map_pairs. */
  map6Pairs(): Pairs | null {
    const ptr = this.u32(PAIRS6_STATUS + 4);
    return decodePairs(this.t.vm.mem.current().subarray(ptr, ptr + this.u32(PAIRS6_STATUS + 8)));
  }
}

const guest = (g: CalloutGuest, callouts?: Callouts, logger?: RecordingLogger): Guest =>
  new Guest(startVm(calloutGuest(g), { ports: { callouts, ...(logger ? { logger } : {}) } }));

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function httpBackend(handler: Parameters<typeof startHttpServer>[0], seen: SeenRequest[] = []): Promise<NodeCallouts> {
  const server = await startHttpServer(handler, seen);
  servers.push(server);
  return new NodeCallouts({ backend: server.url });
}

async function grpcBackend(answer: (call: SeenGrpcCall) => GrpcAnswer, seen: SeenGrpcCall[] = []): Promise<NodeCallouts> {
  const server = await startGrpcServer(answer, seen);
  servers.push(server);
  return new NodeCallouts({ grpc: server.url });
}

/** Answers 201 with one header and a 7-byte body, and no Date header, so map 6 is exact. */
function granted(_req: SeenRequest, res: ServerResponse): void {
  res.sendDate = false;
  res.writeHead(201, { 'x-answer': 'yes', 'content-length': '7' });
  res.end('granted');
}

const GRANTED_MAP = [':status', '201', 'x-answer', 'yes', 'content-length', '7', 'connection', 'close'];

describe('proxy_http_call', () => {
  it.each([':method', ':path', ':authority'])('returns BAD_ARGUMENT when %s is missing, and sends nothing', async (missing) => {
    const seen: SeenRequest[] = [];
    const callouts = await httpBackend(granted, seen);
    const headers = [':method', 'GET', ':path', '/', ':authority', 'backend.local'];
    const without = headers.filter((_, i) => headers[i - (i % 2)] !== missing);
    const g = guest({ headers: without }, callouts);
    expect(g.run('call')).toBe(Status.BAD_ARGUMENT);
    expect(g.u32(RET_TOKEN)).toBe(POISON);
    expect(seen).toEqual([]);
  });

  it('returns BAD_ARGUMENT when a required pseudo-header is empty', async () => {
    const g = guest({ headers: [':method', 'GET', ':path', '/', ':authority', ''] }, await httpBackend(granted));
    expect(g.run('call')).toBe(Status.BAD_ARGUMENT);
  });

  it('returns BAD_ARGUMENT for an unknown cluster', async () => {
    const g = guest({ cluster: 'nowhere' }, await httpBackend(granted));
    expect(g.run('call')).toBe(Status.BAD_ARGUMENT);
    expect(g.u32(RET_TOKEN)).toBe(POISON);
  });

  it('returns UNIMPLEMENTED without a callouts port', () => {
    const g = guest({});
    expect(g.run('call')).toBe(Status.UNIMPLEMENTED);
    expect(g.u32(RET_TOKEN)).toBe(POISON);
  });

  it('gives http calls the tokens 4, 8, 12', async () => {
    const g = guest({}, await httpBackend(granted));
    const tokens = [1, 2, 3].map(() => {
      expect(g.run('call')).toBe(Status.OK);
      return g.u32(RET_TOKEN);
    });
    expect(tokens).toEqual([4, 8, 12]);
    await until(() => g.events().length === 3);
  });

  it('sends the method, path, authority as host, headers and body to the cluster', async () => {
    const seen: SeenRequest[] = [];
    const g = guest({
      headers: [':method', 'POST', ':path', '/check?x=1', ':authority', 'auth.local', 'X-User', 'alice'],
      body: 'hello',
    }, await httpBackend(granted, seen));
    expect(g.run('call')).toBe(Status.OK);
    await until(() => seen.length === 1);
    expect(seen[0].method).toBe('POST');
    expect(seen[0].path).toBe('/check?x=1');
    expect(seen[0].headers.host).toBe('auth.local');
    expect(seen[0].headers['x-user']).toBe('alice');
    expect(seen[0].headers['content-length']).toBe('5');
    expect(seen[0].body.toString()).toBe('hello');
  });

  it('delivers the answer to the root on a later turn as proxy_on_http_call_response(root_id, token, num_headers, body_size, num_trailers)', async () => {
    const g = guest({}, await httpBackend(granted));
    expect(g.run('call')).toBe(Status.OK);
    expect(g.events()).toEqual([]);
    await until(() => g.events().length === 1);
    expect(g.events()).toEqual([`http_call_response(${g.root.id}, 4, ${GRANTED_MAP.length / 2}, 7, 0)`]);
  });

  it('makes map 6 and buffer 4 readable during the callback, and only then', async () => {
    const g = guest({}, await httpBackend(granted));
    g.run('call');
    await until(() => g.events().length === 1);
    expect(g.map6Status()).toEqual([Status.OK, '201']);
    expect(g.map6Pairs()).toEqual(GRANTED_MAP);
    expect(g.buffer()).toEqual([Status.OK, 'granted']);
    expect(g.run('map6_now')).toBe(Status.BAD_ARGUMENT);
    expect(g.run('buffer4_now')).toBe(Status.NOT_FOUND);
  });

  it('resumes a paused stream: pause → http_call → set_effective_context(stream) → continue_stream(0) after the callback returns', async () => {
    const logger = new RecordingLogger();
    const g = guest({}, await httpBackend(granted), logger);
    const logAtContinue: string[][] = [];
    const host = new (class extends TestStream {
      override continueStream(type: StreamType): void {
        logAtContinue.push(logger.messages());
        super.continueStream(type);
      }
    })([[':method', 'GET'], [':path', '/']]);
    const stream = g.t.vm.createStream(g.root, host);
    expect(stream.onRequestHeaders(2, true)).toBe(HeadersAction.STOP_ALL);
    expect(g.u32(RET_TOKEN)).toBe(4);
    expect(host.actions).toEqual([]);
    await until(() => g.events().length === 1);
    // The answer goes to the root that owns the call, not to the stream.
    expect(g.events()).toEqual([`http_call_response(${g.root.id}, 4, 4, 7, 0)`]);
    expect(g.u32(EFFECTIVE_STATUS)).toBe(Status.OK);
    // Callout results stay readable through the root while the stream is the effective context.
    expect(g.map6Status()).toEqual([Status.OK, '201']);
    expect(g.buffer()).toEqual([Status.OK, 'granted']);
    expect(g.u32(CONTINUE_STATUS)).toBe(Status.OK);
    expect(host.actions).toEqual(['continue:0']);
    // The guest logged after asking to continue; the host resumed only once the callback returned.
    expect(logAtContinue).toEqual([['response handled']]);
  });

  it('delivers a refused connection as (root_id, token, 0, 0, 0) with proxy_get_status 11 "reset"', async () => {
    const g = guest({}, new NodeCallouts({ backend: await refusingUrl() }));
    expect(g.run('call')).toBe(Status.OK);
    await until(() => g.events().length === 1);
    expect(g.events()).toEqual([`http_call_response(${g.root.id}, 4, 0, 0, 0)`]);
    expect(g.getStatus()).toEqual([Status.OK, 11, 'reset']);
    expect(g.buffer()[0]).toBe(Status.NOT_FOUND);
  });

  // Envoy's Context::httpCall takes the timeout as an int and answers BadArgument for a negative
  // one before it looks up the cluster or takes a token.
  it.each([-1, -2147483648])('returns BAD_ARGUMENT for the negative timeout %i (the Rust SDK sends Duration::MAX as -1) and sends nothing', async (timeout) => {
    const seen: SeenRequest[] = [];
    const g = guest({}, await httpBackend(granted, seen));
    expect(g.run('call_with', 7, timeout)).toBe(Status.BAD_ARGUMENT);
    expect(g.u32(RET_TOKEN)).toBe(POISON);
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual([]);
    expect(g.events()).toEqual([]);
  });

  it('takes no token for a refused call: after a negative timeout and an unknown cluster the next call gets 4', async () => {
    const g = guest({}, await httpBackend(granted));
    expect(g.run('call_with', 7, -1)).toBe(Status.BAD_ARGUMENT);
    expect(g.run('call_with', 3, 5000)).toBe(Status.BAD_ARGUMENT); // cluster "bac"
    expect(g.run('call')).toBe(Status.OK);
    expect(g.u32(RET_TOKEN)).toBe(4);
    await until(() => g.events().length === 1);
    expect(g.events()).toEqual([`http_call_response(${g.root.id}, 4, ${GRANTED_MAP.length / 2}, 7, 0)`]);
  });

  it('passes 0 (no timeout) and the largest count, 2^31 - 1 ms, on to the port unchanged', async () => {
    const real = await httpBackend(granted);
    const timeouts: number[] = [];
    const g = guest({}, { httpCall: (req, done) => { timeouts.push(req.timeoutMs); return real.httpCall(req, done); } });
    expect(g.run('call_with', 7, 0)).toBe(Status.OK);
    expect(g.run('call_with', 7, 0x7fffffff)).toBe(Status.OK);
    expect(timeouts).toEqual([0, 2147483647]);
    await until(() => g.events().length === 2);
  });

  it('passes the timeout to the port, which answers like Envoy with a 504', async () => {
    const g = guest({ timeoutMs: 50 }, await httpBackend(() => { /* never answers */ }));
    g.run('call');
    await until(() => g.events().length === 1);
    expect(g.map6Status()).toEqual([Status.OK, '504']);
    expect(g.buffer()).toEqual([Status.OK, 'upstream request timeout']);
  });
});

describe('proxy_grpc_call', () => {
  const pong = (): GrpcAnswer => ({ status: 0, message: Buffer.from('pong') });

  it('gives gRPC calls the tokens 5, 9, 13', async () => {
    const g = guest({ cluster: 'grpc' }, await grpcBackend(pong));
    const tokens = [1, 2, 3].map(() => {
      expect(g.run('grpc')).toBe(Status.OK);
      return g.u32(RET_TOKEN);
    });
    expect(tokens).toEqual([5, 9, 13]);
    await until(() => g.events().length === 3);
  });

  it('sends the message length-prefixed to /service/method with the initial metadata', async () => {
    const seen: SeenGrpcCall[] = [];
    const g = guest({ cluster: 'grpc', metadata: ['x-trace', 'abc'], message: 'ping' }, await grpcBackend(pong, seen));
    expect(g.run('grpc')).toBe(Status.OK);
    await until(() => seen.length === 1);
    expect(seen[0].path).toBe('/test.Echo/Say');
    expect(seen[0].headers['content-type']).toBe('application/grpc');
    expect(seen[0].headers['x-trace']).toBe('abc');
    expect(Buffer.from(seen[0].message!).toString()).toBe('ping');
  });

  it('delivers a successful answer as proxy_on_grpc_receive(root_id, token, size) alone, with buffer 5 readable', async () => {
    const g = guest({ cluster: 'grpc' }, await grpcBackend(() => ({ ...pong(), metadata: { 'x-served-by': 'test' } })));
    expect(g.run('grpc')).toBe(Status.OK);
    expect(g.events()).toEqual([]);
    await until(() => g.events().length >= 1);
    await new Promise((r) => setTimeout(r, 20));
    // Envoy's unary handler has onSuccess → on_grpc_receive only; the Rust SDK forgets the token
    // there and panics on any later callback for it.
    expect(g.events()).toEqual([`grpc_receive(${g.root.id}, 5, 4)`]);
    expect(g.buffer()).toEqual([Status.OK, 'pong']);
  });

  it('delivers a failed call as proxy_on_grpc_close(root_id, token, status) alone, with proxy_get_status giving status and message', async () => {
    const g = guest({ cluster: 'grpc' }, await grpcBackend(() => ({ status: 5, statusMessage: 'no such key' })));
    expect(g.run('grpc')).toBe(Status.OK);
    await until(() => g.events().length >= 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(g.events()).toEqual([`grpc_close(${g.root.id}, 5, 5)`]);
    expect(g.getStatus()).toEqual([Status.OK, 5, 'no such key']);
  });

  it('delivers DEADLINE_EXCEEDED (4) through proxy_on_grpc_close when the timeout passes', async () => {
    const g = guest({ cluster: 'grpc', timeoutMs: 50 }, await grpcBackend(() => ({ status: 0, hang: true })));
    g.run('grpc');
    await until(() => g.events().length === 1);
    expect(g.events()).toEqual([`grpc_close(${g.root.id}, 5, 4)`]);
    expect(g.getStatus()).toEqual([Status.OK, 4, 'upstream request timeout']);
  });

  // Unlike http_call, Envoy's grpc_call builds its deadline from the unsigned word, so -1 is a
  // 49-day deadline there, not BAD_ARGUMENT (which the Rust SDK's dispatch_grpc_call panics on).
  it('keeps a negative timeout as an unsigned count: OK, and the port gets it capped at 2^31 - 1 ms, so it does not expire at once', async () => {
    const seen: SeenGrpcCall[] = [];
    const real = await grpcBackend(() => ({ status: 0, hang: true }), seen);
    const timeouts: number[] = [];
    const g = guest({ cluster: 'grpc' }, { grpcCall: (req, done) => { timeouts.push(req.timeoutMs); return real.grpcCall(req, done); } });
    expect(g.run('grpc_with', 4, -1)).toBe(Status.OK);
    expect(g.u32(RET_TOKEN)).toBe(5);
    expect(timeouts).toEqual([2147483647]);
    await until(() => seen.length === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(g.events()).toEqual([]);
    expect(g.run('grpc_cancel', 5)).toBe(Status.OK);
  });

  it('takes no token for a refused call: after an unknown cluster the next call gets 5', async () => {
    const g = guest({ cluster: 'grpc' }, await grpcBackend(pong));
    expect(g.run('grpc_with', 2, 5000)).toBe(Status.PARSE_FAILURE); // cluster "gr"
    expect(g.run('grpc')).toBe(Status.OK);
    expect(g.u32(RET_TOKEN)).toBe(5);
    await until(() => g.events().length === 1);
    expect(g.events()).toEqual([`grpc_receive(${g.root.id}, 5, 4)`]);
  });

  it('returns PARSE_FAILURE for an unknown cluster, as Envoy does', async () => {
    const g = guest({ cluster: 'nowhere' }, await grpcBackend(pong));
    expect(g.run('grpc')).toBe(Status.PARSE_FAILURE);
    expect(g.u32(RET_TOKEN)).toBe(POISON);
  });

  it('returns UNIMPLEMENTED without a port that makes gRPC calls', () => {
    const g = guest({ cluster: 'grpc' }, { httpCall: () => Status.OK });
    expect(g.run('grpc')).toBe(Status.UNIMPLEMENTED);
  });

  it.each(['grpc_cancel', 'grpc_close'])('%s ends a call: OK, nothing is delivered, and the token is then unknown', async (name) => {
    const seen: SeenGrpcCall[] = [];
    const g = guest({ cluster: 'grpc' }, await grpcBackend(() => ({ status: 0, hang: true }), seen));
    g.run('grpc');
    await until(() => seen.length === 1);
    expect(g.run(name, 5)).toBe(Status.OK);
    await seen[0].closed;
    await new Promise((r) => setTimeout(r, 20));
    expect(g.events()).toEqual([]);
    expect(g.run(name, 5)).toBe(Status.NOT_FOUND);
  });

  it.each(['grpc_cancel', 'grpc_close'])('%s returns BAD_ARGUMENT for a token that is not gRPC and NOT_FOUND for an unknown one', (name) => {
    const g = guest({});
    for (const token of [0, 4, 8, 7]) expect(g.run(name, token)).toBe(Status.BAD_ARGUMENT);
    for (const token of [5, 13, 6]) expect(g.run(name, token)).toBe(Status.NOT_FOUND);
  });
});
