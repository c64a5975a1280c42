/**
 * The SDK's typed hostcall wrappers, one group per test, through the probe fixture
 * (test/filters/fixtures/probe): each root id exercises one area and logs what the wrappers
 * returned, and the test checks that against what the host's real in-memory ports hold.
 */
import { describe, expect, it } from 'vitest';
import { BodyBuffer } from '../../gateway/abi/body-buffer.js';
import { BodyAction, HeadersAction, LogLevel, MetricType } from '../../gateway/abi/enums.js';
import { HeaderMap } from '../../gateway/abi/header-map.js';
import { encodePairs } from '../../gateway/abi/pairs.js';
import { TestStream, text, until } from '../helpers/host.js';
import { bootGuest, bytesOf, type GuestVm } from './sdk-guests.js';

function start(rootId: string, g: GuestVm = bootGuest('probe')) {
  const root = g.vm.createRoot({ name: `probe-${rootId}`, rootId, configuration: text('') });
  return { ...g, root };
}

function messages(g: GuestVm, prefix: string): string[] {
  return g.logger.messages().filter((m) => m.startsWith(`${prefix} `));
}

describe('SDK hostcall wrappers', () => {
  it('shared data: NOT_FOUND for a missing key, writes, CAS-conditional writes and CAS_MISMATCH for a stale CAS', () => {
    const g = start('shared');
    const stream = g.vm.createStream(g.root, new TestStream([[':path', '/'], ['x-key', 'counter']]));
    expect(stream.onRequestHeaders(2, true)).toBe(HeadersAction.CONTINUE);
    expect(messages(g, 'shared')).toEqual([
      'shared get=NOT_FOUND set=OK get=v1 cas-nonzero=yes cas-set=OK stale-set=CAS_MISMATCH final=v2 cas-changed=yes',
    ]);
    const entry = g.sharedData.get('sdk-test', 'counter')!;
    expect(Buffer.from(entry.value).toString()).toBe('v2');
  });

  it('shared queues: register, resolve (NOT_FOUND for an unknown name), enqueue, and onQueueReady on the registering root', async () => {
    const g = start('queue');
    expect(messages(g, 'queue')).toEqual(['queue registered OK nonzero=yes']);
    const stream = g.vm.createStream(g.root, new TestStream([[':path', '/'], ['x-item', 'job-1']]));
    expect(stream.onRequestHeaders(2, true)).toBe(HeadersAction.CONTINUE);
    await until(() => messages(g, 'queue').length === 3);
    expect(messages(g, 'queue').slice(1)).toEqual([
      'queue resolve=OK missing=NOT_FOUND enqueue=OK unknown=NOT_FOUND',
      'queue ready same-id=yes items=job-1 end=EMPTY',
    ]);
  });

  it('metrics: counter, gauge and histogram defined once, updated per request; a histogram refuses increments', () => {
    const g = start('metrics');
    for (let i = 0; i < 2; i++) g.vm.createStream(g.root, new TestStream([[':path', '/']])).onRequestHeaders(1, true);
    expect(messages(g, 'metrics')).toEqual([
      'metrics counter=2 gauge=5 histogram-increment=BAD_ARGUMENT',
      'metrics counter=4 gauge=5 histogram-increment=BAD_ARGUMENT',
    ]);
    expect(g.metrics.cells.get('probe_requests')).toMatchObject({ type: MetricType.COUNTER, value: 4 });
    expect(g.metrics.cells.get('probe_inflight')).toMatchObject({ type: MetricType.GAUGE, value: 5 });
    expect(g.metrics.cells.get('probe_sizes')).toMatchObject({ type: MetricType.HISTOGRAM, samples: [42, 42] });
  });

  it('properties: NUL-joined paths, strings, 8-byte integers, booleans, maps, NOT_FOUND as null, and set then read back', () => {
    const g = start('properties');
    const host = new TestStream([[':path', '/x?y']]);
    host.properties.set('request.path', text('/x'));
    const port = Buffer.alloc(8);
    port.writeBigInt64LE(1234n);
    host.properties.set('source.port', port);
    host.properties.set('connection.mtls', Uint8Array.of(1));
    host.properties.set('request.headers', encodePairs([':path', '/x?y', 'accept', '*/*']));
    g.vm.createStream(g.root, host).onRequestHeaders(1, true);
    expect(messages(g, 'properties')).toEqual([
      'properties name=probe-properties root=properties path=/x port=1234 mtls=true headers=2::path=/x?y missing=<null> set=OK '
        + 'readback=hello root-field=properties',
    ]);
    expect(Buffer.from(host.properties.get('probe.note')!).toString()).toBe('hello');
  });

  it('header maps: pairs round trip (UTF-8, empty values), replace, add, remove, NOT_FOUND as null, and the response map', () => {
    const g = start('maps');
    const host = new TestStream([[':method', 'GET'], [':path', '/p'], ['x-gone', 'bye'], ['accept', '*/*']]);
    const stream = g.vm.createStream(g.root, host);
    expect(stream.onRequestHeaders(4, false)).toBe(HeadersAction.CONTINUE);
    expect(host.maps[0]!.pairs).toEqual([
      'accept', '*/*', ':path', '/p', ':method', 'GET',
      'x-unicode', bytesOf('naïve ☃ 𝄞'), 'x-empty', '', 'x-replaced', 'two', 'x-added', 'a', 'x-added', 'b',
    ]);
    host.maps[2] = HeaderMap.from([[':status', '200']]);
    expect(stream.onResponseHeaders(1, true)).toBe(HeadersAction.CONTINUE);
    expect(host.maps[2].pairs).toEqual([':status', '201', 'x-response', 'yes']);
    expect(messages(g, 'maps')).toEqual([
      'maps n=4 before=:method=GET|:path=/p|x-gone=bye|accept=*/* first-added=a empty=[] absent=<null> unicode=naïve ☃ 𝄞 response-map=',
      'maps response=:status=201|x-response=yes',
    ]);
  });

  it('bodies: Pause buffers until end of stream, then the whole body is read and replaced; a response body is appended to', () => {
    const g = start('body');
    const host = new TestStream([[':method', 'POST'], [':path', '/'], ['content-length', '11']]);
    const stream = g.vm.createStream(g.root, host);
    expect(stream.onRequestHeaders(3, false)).toBe(HeadersAction.CONTINUE);
    expect(host.maps[0]!.get('content-length')).toBeUndefined();
    host.bodies[0] = new BodyBuffer(text('hello '));
    expect(stream.onRequestBody(6, false)).toBe(BodyAction.STOP_AND_BUFFER);
    host.bodies[0].append(text('world'));
    expect(stream.onRequestBody(11, true)).toBe(BodyAction.CONTINUE);
    expect(host.bodies[0].bytes().toString()).toBe('HELLO WORLD');
    host.bodies[1] = new BodyBuffer(text('answer'));
    expect(stream.onResponseBody(6, true)).toBe(BodyAction.CONTINUE);
    expect(host.bodies[1].bytes().toString()).toBe('answer (probed)');
  });

  it('local responses: status, body, repeated headers and details; a gRPC reply carries its status', () => {
    const g = start('local');
    const host = new TestStream([[':path', '/']]);
    expect(g.vm.createStream(g.root, host).onRequestHeaders(1, true)).toBe(HeadersAction.STOP_ALL);
    expect(host.actions).toEqual(['local:418']);
    expect(host.localResponse).toMatchObject({ status: 418, details: 'probe_local', headers: ['x-probe', 'teapot', 'x-probe', 'twice'], grpcStatus: -1 });
    expect(Buffer.from(host.localResponse!.body).toString()).toBe('short and stout');

    const grpc = new TestStream([[':path', '/svc/M'], ['x-grpc', '1']]);
    g.vm.createStream(g.root, grpc).onRequestHeaders(2, true);
    expect(grpc.localResponse).toMatchObject({ status: 200, headers: ['x-probe', 'grpc'], grpcStatus: 7 });
    expect(Buffer.from(grpc.localResponse!.body).toString()).toBe('no entry');
  });

  it('timers: onTick every period until stopped with 0, with the current time moving on', async () => {
    const g = start('timer');
    await until(() => messages(g, 'timer').length >= 3);
    await new Promise((r) => setTimeout(r, 30));
    expect(messages(g, 'timer')).toEqual(['timer tick 1 later=yes', 'timer tick 2 later=yes', 'timer tick 3 later=yes']);
    expect(g.root.tick).toBeNull();
  });

  it('logging: the host log level is readable, and lines carry the plugin as origin', () => {
    const g = bootGuest('probe');
    g.logger.threshold = LogLevel.INFO;
    const root = g.vm.createRoot({ name: 'lvl', rootId: 'log-level', configuration: text('') });
    expect(g.logger.lines).toEqual([{ level: LogLevel.INFO, message: 'log-level 2', origin: root }]);
  });

  it('foreign functions: a registered one answers, an unknown one is NOT_FOUND', () => {
    const reverse = (args: Uint8Array): Uint8Array => Uint8Array.from(args).reverse();
    const g = start('foreign', bootGuest('probe', { foreignFunctions: new Map([['reverse', reverse]]) }));
    expect(messages(g, 'foreign')).toEqual(['foreign reverse=OK:cba missing=NOT_FOUND']);
  });

  it('a root that returns false from onDone is deleted once it calls done()', async () => {
    const g = start('lazy-done');
    g.root.shutdown();
    expect(g.root.pendingDone).toBe(true);
    await until(() => !g.root.alive);
    expect(messages(g, 'lazy-done')).toEqual(['lazy-done on_done', 'lazy-done done OK', 'lazy-done on_delete']);
    expect(g.vm.failed).toBe(false);
  });
});
