import { Agent, request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, startUpstream, wasmFile, type TestGateway, type Upstream } from '../helpers/gateway.js';
import { Guest, guestLines, waitFor } from '../helpers/guests.js';

/** Request-phase properties, each copied (hex) into request header `x-p-<name>` for the upstream. */
const REQUEST_PROPERTIES: ReadonlyArray<[string, string]> = [
  ['request.path', 'request\0path'],
  ['request.url_path', 'request\0url_path'],
  ['request.host', 'request\0host'],
  ['request.method', 'request\0method'],
  ['request.header', 'request\0headers\0x-custom'],
  ['request.id', 'request\0id'],
  ['request.protocol', 'request\0protocol'],
  ['request.time', 'request\0time'],
  ['source.address', 'source\0address'],
  ['source.port', 'source\0port'],
  ['destination.port', 'destination\0port'],
  ['connection.id', 'connection\0id'],
  ['route_name', 'route_name'],
  ['xds.route_name', 'xds\0route_name'],
  ['cluster_name', 'cluster_name'],
  ['xds.cluster_name', 'xds\0cluster_name'],
  ['node.id', 'node\0id'],
  ['xds.node', 'xds\0node'],
  ['plugin_name', 'plugin_name'],
  ['plugin_root_id', 'plugin_root_id'],
  ['plugin_vm_id', 'plugin_vm_id'],
  ['filter_state', 'my_state'],
  ['missing', 'no_such_property'],
];

/** Reads properties: the request ones into request headers, upstream.* into response headers, response.code in on_log. */
function readerFilter(): string {
  const g = new Guest();
  const copy = (map: number, [name, path]: [string, string]): string =>
    `(call $prop_header ${g.lit(path)} (i32.const ${map}) ${g.lit(`x-p-${name}`)})`;
  return g.build({
    log: false,
    on: {
      proxy_on_request_headers: `${REQUEST_PROPERTIES.map((p) => copy(0, p)).join('\n')} (i32.const 0)`,
      proxy_on_response_headers: `${copy(2, ['upstream.address', 'upstream\0address'])} ${copy(2, ['upstream.port', 'upstream\0port'])} (i32.const 0)`,
      proxy_on_log: `(call $log_prop ${g.lit('response\0code')} ${g.lit('response.code')})`,
    },
  });
}

/** Stores filter state "my_state" = "hello" through proxy_set_property, before the reader runs. */
function setterFilter(): string {
  const g = new Guest();
  return g.build({
    log: false,
    on: {
      proxy_on_request_headers: `
        (call $log_num ${g.lit('set_property=')} (call $proxy_set_property ${g.lit('my_state')} ${g.lit('hello')}))
        (i32.const 0)`,
    },
  });
}

const int = (value: number | bigint): string => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(value));
  return b.toString('hex');
};
const str = (value: string): string => Buffer.from(value).toString('hex');

interface Exchange { status: number; headers: Record<string, string | string[] | undefined>; localPort: number }

function get(url: string, agent: Agent, headers: Record<string, string>): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    let localPort = 0;
    const req = request(url, { agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, localPort }));
    });
    req.on('socket', (socket) => {
      const port = (): void => { localPort = socket.localPort!; };
      if (socket.localPort !== undefined) port();
      else socket.once('connect', port);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('properties', () => {
  let cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanup.reverse()) await c();
    cleanup = [];
  });

  async function setup(): Promise<{ gw: TestGateway; upstream: Upstream }> {
    const upstream = await startUpstream();
    cleanup.push(upstream.close);
    const gw = await startGateway({
      node: { id: 'edge-test', cluster: 'test' },
      clusters: [{ name: 'backend', endpoints: [upstream.url] }],
      plugins: [
        { name: 'setter', module: wasmFile(setterFilter(), 'setter') },
        { name: 'props', module: wasmFile(readerFilter(), 'props'), rootId: 'props-root', vmId: 'vm-1' },
      ],
      routes: [{ name: 'props-route', cluster: 'backend', filters: ['setter', 'props'] }],
    });
    cleanup.push(gw.close);
    return { gw, upstream };
  }

  it('serves request, connection, route, cluster, node and plugin properties serialised as Envoy does, and filter state', async () => {
    const { gw, upstream } = await setup();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanup.push(async () => agent.destroy());
    const before = BigInt(Date.now()) * 1_000_000n;
    const reply = await get(`${gw.url}/props/x?y=1`, agent, { 'x-custom': 'custom-value', 'x-request-id': 'req-123' });
    const after = BigInt(Date.now()) * 1_000_000n;
    expect(reply.status).toBe(200);
    const seen = upstream.requests[0].headers;
    const gatewayPort = Number(new URL(gw.url).port);
    const nodeProto = Buffer.concat([Buffer.of(0x0a, 9), Buffer.from('edge-test'), Buffer.of(0x12, 4), Buffer.from('test')]).toString('hex');
    const time = Buffer.from(seen['x-p-request.time'] as string, 'hex');
    expect(time.length).toBe(8);
    expect(time.readBigUInt64LE()).toBeGreaterThanOrEqual(before - 1_000_000n);
    expect(time.readBigUInt64LE()).toBeLessThanOrEqual(after);
    const connectionId = seen['x-p-connection.id'] as string;
    expect(connectionId).toMatch(/^[0-9a-f]{16}$/);
    expect(Object.fromEntries(REQUEST_PROPERTIES.filter(([n]) => n !== 'request.time' && n !== 'connection.id').map(([n]) => [n, seen[`x-p-${n}`]]))).toEqual({
      'request.path': str('/props/x?y=1'),
      'request.url_path': str('/props/x'),
      'request.host': str(`127.0.0.1:${gatewayPort}`),
      'request.method': str('GET'),
      'request.header': str('custom-value'),
      'request.id': str('req-123'),
      'request.protocol': str('HTTP/1.1'),
      'source.address': str(`127.0.0.1:${reply.localPort}`),
      'source.port': int(reply.localPort),
      'destination.port': int(gatewayPort),
      'route_name': str('props-route'),
      'xds.route_name': str('props-route'),
      'cluster_name': str('backend'),
      'xds.cluster_name': str('backend'),
      'node.id': str('edge-test'),
      'xds.node': nodeProto,
      'plugin_name': str('props'),
      'plugin_root_id': str('props-root'),
      'plugin_vm_id': str('vm-1'),
      'filter_state': str('hello'),
      'missing': '!1',
    });
    expect(guestLines(gw.logs)).toContain('setter: set_property=0');

    // Same connection, same connection.id; a new connection gets another one.
    await get(`${gw.url}/again`, agent, {});
    expect(upstream.requests[1].headers['x-p-connection.id']).toBe(connectionId);
    const other = new Agent({ keepAlive: false });
    await get(`${gw.url}/other`, other, {});
    expect(upstream.requests[2].headers['x-p-connection.id']).not.toBe(connectionId);
  });

  it('serves upstream.address and upstream.port in on_response_headers and response.code in on_log', async () => {
    const { gw, upstream } = await setup();
    const agent = new Agent({ keepAlive: false });
    const reply = await get(`${gw.url}/up`, agent, {});
    const upstreamPort = Number(new URL(upstream.url).port);
    expect(reply.headers['x-p-upstream.address']).toBe(str(`127.0.0.1:${upstreamPort}`));
    expect(reply.headers['x-p-upstream.port']).toBe(int(upstreamPort));
    await waitFor(() => guestLines(gw.logs).some((l) => l.startsWith('props: response.code')), 'on_log');
    expect(guestLines(gw.logs).filter((l) => l.startsWith('props: response.code'))).toEqual([`props: response.code=${int(200)}`]);
  });
});
