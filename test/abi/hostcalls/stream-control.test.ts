import { describe, expect, it } from 'vitest';
import { BodyAction, HeadersAction, LogLevel, Status } from '../../../gateway/abi/enums.js';
import { encodePairs } from '../../../gateway/abi/pairs.js';
import type { PluginOrigin } from '../../../gateway/abi/ports.js';
import { RecordingLogger, TestStream } from '../../helpers/host.js';
import { RET_PTR, RET_SIZE, startProbe, type Probe } from '../../helpers/probe.js';

const CONTROL_CALLS = [
  'proxy_continue_stream', 'proxy_close_stream', 'proxy_send_local_response', 'proxy_set_effective_context',
  'proxy_done', 'proxy_get_status', 'proxy_log', 'proxy_get_header_map_value',
];

/** Logs each line with the stream's actions as they are at that moment. */
class SnapshotLogger extends RecordingLogger {
  host: TestStream | null = null;
  override log(level: LogLevel, message: string, origin: PluginOrigin | null): void {
    super.log(level, `${message} [${this.host?.actions.join(',') ?? ''}]`, origin);
  }
}

// "after" at 0x8000 for proxy_log.
const LOG_AFTER = `(data (i32.const 0x8000) "after")`;

function setup(opts: { abi?: '0_1_0' | '0_2_1'; body?: string; names?: string[] } = {}) {
  const logger = new SnapshotLogger();
  const t = startProbe(opts.names ?? CONTROL_CALLS, { abi: opts.abi, body: `${LOG_AFTER}\n${opts.body ?? ''}`, ports: { logger } });
  const root = t.vm.createRoot({ name: 'p', rootId: 'r', configuration: new Uint8Array(0) });
  const host = new TestStream([[':path', '/x']]);
  logger.host = host;
  const stream = t.vm.createStream(root, host);
  return { ...t, logger, root, host, stream };
}

function localResponse(p: Probe, ctx: Parameters<Probe['call']>[0], status: number, opts: {
  details?: string; body?: string; headers?: Uint8Array; grpc?: number;
} = {}): number {
  return p.call(ctx, 'proxy_send_local_response', status, ...p.input(opts.details ?? ''), ...p.input(opts.body ?? ''),
    ...p.input(opts.headers ?? new Uint8Array(0)), opts.grpc ?? -1);
}

describe('proxy_continue_stream and proxy_close_stream', () => {
  const guest = `
  (func (export "continue_then_log") (param $type i32) (result i32)
    (local $s i32)
    (local.set $s (call $proxy_continue_stream (local.get $type)))
    (drop (call $proxy_log (i32.const 2) (i32.const 0x8000) (i32.const 5)))
    (local.get $s))
  (func (export "close_then_log") (param $type i32) (result i32)
    (local $s i32)
    (local.set $s (call $proxy_close_stream (local.get $type)))
    (drop (call $proxy_log (i32.const 2) (i32.const 0x8000) (i32.const 5)))
    (local.get $s))
  (func (export "close_then_continue") (result i32)
    (drop (call $proxy_close_stream (i32.const 1)))
    (call $proxy_continue_stream (i32.const 0)))`;

  it('defers continue_stream until the guest call returns', () => {
    const { probe, stream, host, logger } = setup({ body: guest });
    expect(probe.run(stream, 'continue_then_log', 0)).toBe(Status.OK);
    expect(logger.messages()).toEqual(['after []']);
    expect(host.actions).toEqual(['continue:0']);
  });

  it('defers close_stream until the guest call returns', () => {
    const { probe, stream, host, logger } = setup({ body: guest });
    expect(probe.run(stream, 'close_then_log', 1)).toBe(Status.OK);
    expect(logger.messages()).toEqual(['after []']);
    expect(host.actions).toEqual(['close:1']);
  });

  it('applies deferred actions in the order the guest asked for them', () => {
    const { probe, stream, host } = setup({ body: guest });
    expect(probe.run(stream, 'close_then_continue')).toBe(Status.OK);
    expect(host.actions).toEqual(['close:1', 'continue:0']);
  });

  it('defers a continue asked for in a callback until the callback has returned its result', () => {
    const { stream, host, logger } = setup({
      body: `
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $proxy_continue_stream (i32.const 0)))
    (drop (call $proxy_log (i32.const 2) (i32.const 0x8000) (i32.const 5)))
    (i32.const 1))`,
    });
    expect(stream.onRequestHeaders(1, true)).toBe(HeadersAction.STOP_ALL);
    expect(logger.messages()).toEqual(['after []']);
    expect(host.actions).toEqual(['continue:0']);
  });

  it('continues the request, response and downstream directions (0, 1, 2)', () => {
    const { probe, stream, host } = setup();
    for (const type of [0, 1, 2]) expect(probe.call(stream, 'proxy_continue_stream', type)).toBe(Status.OK);
    expect(host.actions).toEqual(['continue:0', 'continue:1', 'continue:2']);
  });

  it('returns UNIMPLEMENTED for continuing UPSTREAM (3), as Envoy, and does nothing', () => {
    const { probe, stream, host } = setup();
    expect(probe.call(stream, 'proxy_continue_stream', 3)).toBe(Status.UNIMPLEMENTED);
    expect(host.actions).toEqual([]);
  });

  it.each([4, 100, -1])('returns BAD_ARGUMENT for stream type %i and does nothing', (type) => {
    const { probe, stream, host } = setup();
    expect(probe.call(stream, 'proxy_continue_stream', type)).toBe(Status.BAD_ARGUMENT);
    expect(probe.call(stream, 'proxy_close_stream', type)).toBe(Status.BAD_ARGUMENT);
    expect(host.actions).toEqual([]);
  });

  it('closes every stream type 0..3', () => {
    const { probe, stream, host } = setup();
    for (const type of [0, 1, 2, 3]) expect(probe.call(stream, 'proxy_close_stream', type)).toBe(Status.OK);
    expect(host.actions).toEqual(['close:0', 'close:1', 'close:2', 'close:3']);
  });

  it('is a silent OK with no action from a root context', () => {
    const { probe, root, host } = setup();
    expect(probe.call(root, 'proxy_continue_stream', 0)).toBe(Status.OK);
    expect(probe.call(root, 'proxy_close_stream', 0)).toBe(Status.OK);
    expect(host.actions).toEqual([]);
  });

  it('ABI 0.1.0 proxy_continue_request and proxy_continue_response continue the request and the response', () => {
    const { probe, stream, host } = setup({ abi: '0_1_0', names: ['proxy_continue_request', 'proxy_continue_response', 'proxy_clear_route_cache', 'proxy_log'] });
    expect(probe.call(stream, 'proxy_continue_request')).toBe(Status.OK);
    expect(probe.call(stream, 'proxy_continue_response')).toBe(Status.OK);
    expect(probe.call(stream, 'proxy_clear_route_cache')).toBe(Status.OK);
    expect(host.actions).toEqual(['continue:0', 'continue:1']);
  });
});

describe('proxy_send_local_response', () => {
  it('sends the status, the details with whitespace turned into "_", the body and the extra headers', () => {
    const { probe, stream, host } = setup();
    expect(localResponse(probe, stream, 403, {
      details: 'denied by\tpolicy\n', body: 'forbidden', headers: encodePairs(['X-Reason', 'policy', 'x-reason', 'again']),
    })).toBe(Status.OK);
    expect(host.actions).toEqual(['local:403']);
    const { body, ...rest } = host.localResponse!;
    expect(rest).toEqual({ status: 403, details: 'denied_by_policy_', headers: ['x-reason', 'policy', 'x-reason', 'again'], grpcStatus: -1 });
    expect(Buffer.from(body).toString()).toBe('forbidden');
  });

  it('passes grpc_status 0..16 through and treats -1 or anything else as "not gRPC"', () => {
    for (const [given, sent] of [[-1, -1], [0, 0], [16, 16], [17, -1], [0x7fffffff, -1]]) {
      const { probe, stream, host } = setup();
      expect(localResponse(probe, stream, 200, { grpc: given })).toBe(Status.OK);
      expect(host.localResponse?.grpcStatus).toBe(sent);
    }
  });

  it('accepts empty details, body and headers given as (ptr=0, len=0)', () => {
    const { probe, stream, host } = setup();
    expect(probe.call(stream, 'proxy_send_local_response', 204, 0, 0, 0, 0, 0, 0, -1)).toBe(Status.OK);
    const { body, ...rest } = host.localResponse!;
    expect(rest).toEqual({ status: 204, details: '', headers: [], grpcStatus: -1 });
    expect(body.length).toBe(0);
  });

  it('keeps the body the guest passed even if the guest reuses that memory before returning', () => {
    const { probe, stream, host } = setup({
      body: `
  (data (i32.const 0x8100) "forbidden")
  (func (export "reply_then_scribble") (result i32)
    (local $s i32)
    (local.set $s (call $proxy_send_local_response (i32.const 403) (i32.const 0) (i32.const 0)
      (i32.const 0x8100) (i32.const 9) (i32.const 0) (i32.const 0) (i32.const -1)))
    (i32.store (i32.const 0x8100) (i32.const 0x58585858))
    (local.get $s))`,
    });
    expect(probe.run(stream, 'reply_then_scribble')).toBe(Status.OK);
    expect(Buffer.from(host.localResponse!.body).toString()).toBe('forbidden');
  });

  it('returns BAD_ARGUMENT for malformed headers and sends nothing', () => {
    const { probe, stream, host } = setup();
    expect(localResponse(probe, stream, 403, { headers: Buffer.from('0100000001000000', 'hex') })).toBe(Status.BAD_ARGUMENT);
    expect(host.actions).toEqual([]);
    // Refused like a status the host cannot send: the callback counts as a filter failure.
    expect([stream.localReplyRequests, stream.localReplySent]).toEqual([1, false]);
  });

  it('refuses a status that is not a final HTTP status (200..599) with BAD_ARGUMENT and a warning, and sends nothing', () => {
    for (const status of [0, 42, 100, 101, 199, 600, 99999, -1]) {
      const { probe, stream, host, logger } = setup();
      expect(localResponse(probe, stream, status)).toBe(Status.BAD_ARGUMENT);
      expect(host.actions).toEqual([]);
      // Requested but never sent: the data plane counts the callback as a filter failure.
      expect([stream.localReplyRequests, stream.localReplySent]).toEqual([1, false]);
      expect(logger.lines.map((l) => [l.level, l.message.replace(/ in module \S+:/, ':')])).toEqual([
        [LogLevel.WARN, `proxy_send_local_response refused: status ${status} is not a final HTTP status (200..599) []`],
      ]);
    }
    for (const status of [200, 599]) expect(localResponse(setup().probe, setup().stream, status)).not.toBe(Status.BAD_ARGUMENT);
  });

  it('refuses extra headers the host cannot send: CR, LF or NUL in a value or a name, a pseudo-header, a bad content-length', () => {
    for (const headers of [['x-a', 'a\r\nx-injected: 1'], ['x-a\r\nb', '1'], ['x-a', 'a\0b'], [':status', '200'], ['', 'x'],
      ['content-length', 'abc']]) {
      const { probe, stream, host } = setup();
      expect(localResponse(probe, stream, 403, { headers: encodePairs(headers) })).toBe(Status.BAD_ARGUMENT);
      expect(host.actions).toEqual([]);
    }
  });

  const replyAndContinue = `
  (data (i32.const 0x8100) "no")
  (func $reply (result i32)
    (call $proxy_send_local_response (i32.const 403) (i32.const 0) (i32.const 0)
      (i32.const 0x8100) (i32.const 2) (i32.const 0) (i32.const 0) (i32.const -1)))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (i32.store (i32.const 0x40) (call $reply))
    (i32.const 0))
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (i32.store (i32.const 0x44) (call $reply))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (i32.const 0))`;

  it('forces the headers callback result to STOP_ALL even when the guest returns Continue (0)', () => {
    const { probe, stream, host } = setup({ body: replyAndContinue });
    expect(stream.onRequestHeaders(1, false)).toBe(HeadersAction.STOP_ALL);
    expect(probe.u32(0x40)).toBe(Status.OK);
    expect(host.actions).toEqual(['local:403']);
  });

  it('sends one local response per stream: a second one is OK, still forces Stop, and is not sent again', () => {
    const { probe, stream, host } = setup({ body: replyAndContinue });
    stream.onRequestHeaders(1, false);
    expect(stream.onRequestBody(3, true)).toBe(BodyAction.STOP_NO_BUFFER);
    expect(probe.u32(0x44)).toBe(Status.OK);
    expect(host.actions).toEqual(['local:403']);
  });

  it('does not force Stop on a later callback that sent nothing', () => {
    const { stream } = setup({ body: replyAndContinue });
    stream.onRequestHeaders(1, false);
    expect(stream.onResponseHeaders(1, false)).toBe(HeadersAction.CONTINUE);
  });

  it('is sent once even when the guest asks twice in the same call', () => {
    const { probe, stream, host } = setup({
      body: `
  (func (export "reply_twice") (result i32)
    (drop (call $proxy_send_local_response (i32.const 401) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
      (i32.const 0) (i32.const 0) (i32.const -1)))
    (call $proxy_send_local_response (i32.const 500) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
      (i32.const 0) (i32.const 0) (i32.const -1)))`,
    });
    expect(probe.run(stream, 'reply_twice')).toBe(Status.OK);
    expect(host.actions).toEqual(['local:401']);
  });
});

describe('proxy_set_effective_context', () => {
  const guest = `
  (data (i32.const 0x8100) ":path")
  (func (export "read_path_as") (param $ctx i32) (result i32)
    (local $s i32)
    (local.set $s (call $proxy_set_effective_context (local.get $ctx)))
    (if (local.get $s) (then (return (local.get $s))))
    (call $proxy_get_header_map_value (i32.const 0) (i32.const 0x8100) (i32.const 5) (i32.const 0x10) (i32.const 0x14)))
  (func (export "continue_as") (param $ctx i32) (result i32)
    (drop (call $proxy_set_effective_context (local.get $ctx)))
    (call $proxy_continue_stream (i32.const 0)))
  (func (export "reply_as") (param $ctx i32) (result i32)
    (drop (call $proxy_set_effective_context (local.get $ctx)))
    (call $proxy_send_local_response (i32.const 429) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
      (i32.const 0) (i32.const 0) (i32.const -1)))`;

  it('makes map calls from the root act on the given stream', () => {
    const { probe, root, stream } = setup({ body: guest });
    expect(probe.run(root, 'read_path_as', stream.id)).toBe(Status.OK);
    expect(probe.returnedText()).toBe('/x');
  });

  it('makes continue_stream and send_local_response from the root act on the given stream', () => {
    const { probe, root, stream, host } = setup({ body: guest });
    expect(probe.run(root, 'continue_as', stream.id)).toBe(Status.OK);
    expect(probe.run(root, 'reply_as', stream.id)).toBe(Status.OK);
    expect(host.actions).toEqual(['continue:0', 'local:429']);
  });

  it('accepts the root id itself', () => {
    const { probe, root } = setup();
    expect(probe.call(root, 'proxy_set_effective_context', root.id)).toBe(Status.OK);
  });

  it('returns BAD_ARGUMENT for an unknown or finished context id', () => {
    const { probe, root, stream, vm } = setup({ body: guest });
    expect(probe.run(root, 'read_path_as', 999)).toBe(Status.BAD_ARGUMENT);
    expect(probe.call(root, 'proxy_set_effective_context', 0)).toBe(Status.BAD_ARGUMENT);
    const gone = stream.id;
    stream.finish();
    expect(probe.run(root, 'read_path_as', gone)).toBe(Status.BAD_ARGUMENT);
    expect(vm.effective).toBeNull();
  });

  it('resets the override when the guest call returns', () => {
    const { probe, root, stream, vm } = setup({ body: guest });
    expect(probe.call(root, 'proxy_set_effective_context', stream.id)).toBe(Status.OK);
    expect(vm.effective).toBeNull();
    expect(vm.current).toBeNull();
    const [key, keyLen] = probe.input(':path');
    expect(probe.call(root, 'proxy_get_header_map_value', 0, key, keyLen, RET_PTR, RET_SIZE)).toBe(Status.BAD_ARGUMENT);
  });
});

describe('proxy_done', () => {
  it('returns NOT_FOUND when the root is not waiting for it', () => {
    const { probe, root, stream } = setup();
    expect(probe.call(root, 'proxy_done')).toBe(Status.NOT_FOUND);
    expect(probe.call(stream, 'proxy_done')).toBe(Status.NOT_FOUND);
    expect(root.alive).toBe(true);
  });

  it('deletes a root whose on_done returned false, after the guest call that called it returns', () => {
    const { probe, root, vm, logger } = setup({
      body: `
  (data (i32.const 0x8100) "deleted")
  (func (export "proxy_on_done") (param i32) (result i32) (i32.const 0))
  (func (export "proxy_on_delete") (param i32)
    (drop (call $proxy_log (i32.const 2) (i32.const 0x8100) (i32.const 7))))
  (func (export "done_then_log") (result i32)
    (local $s i32)
    (local.set $s (call $proxy_done))
    (drop (call $proxy_log (i32.const 2) (i32.const 0x8000) (i32.const 5)))
    (local.get $s))`,
    });
    root.shutdown();
    expect(root.pendingDone).toBe(true);
    expect(probe.run(root, 'done_then_log')).toBe(Status.OK);
    expect(logger.messages()).toEqual(['after []', 'deleted []']);
    expect(root.alive).toBe(false);
    expect(vm.contexts.has(root.id)).toBe(false);
  });
});

describe('proxy_get_status', () => {
  it('reads the last callout status from the root, also from a stream', () => {
    const { probe, root, stream } = setup();
    root.statusCode = 11;
    root.statusMessage = 'reset';
    expect(probe.call(stream, 'proxy_get_status', 0x20, RET_PTR, RET_SIZE)).toBe(Status.OK);
    expect(probe.u32(0x20)).toBe(11);
    expect(probe.returnedText()).toBe('reset');
  });

  it('writes ptr=0 and len=0 for an empty message', () => {
    const { probe, root } = setup();
    probe.poison();
    expect(probe.call(root, 'proxy_get_status', 0x20, RET_PTR, RET_SIZE)).toBe(Status.OK);
    expect([probe.u32(0x20), probe.u32(RET_PTR), probe.u32(RET_SIZE)]).toEqual([0, 0, 0]);
  });
});
