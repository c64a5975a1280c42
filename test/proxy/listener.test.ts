/**
 * The listener with pipelined requests on one connection: answered in order, none served after a
 * refused one, and every flow ended (on_log… and the access log) when the client leaves with
 * requests still queued behind another.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, startUpstream } from '../helpers/gateway.js';
import { until } from '../helpers/host.js';
import { rawExchange } from '../helpers/raw-http.js';

const H = 'Host: gw.test\r\n';
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

describe('pipelined requests', () => {
  it('are answered in order on the connection', async () => {
    const upstream = await startUpstream();
    const gw = await startGateway({ clusters: [{ name: 'b', endpoints: [upstream.url] }], routes: [{ name: 'all', cluster: 'b' }] });
    cleanup.push(() => gw.close(), () => upstream.close());
    const reply = await rawExchange(Number(new URL(gw.url).port),
      [`GET /1 HTTP/1.1\r\n${H}\r\nGET /2 HTTP/1.1\r\n${H}\r\nGET /3 HTTP/1.1\r\n${H}Connection: close\r\n\r\n`]);
    expect(reply.statuses).toEqual([200, 200, 200]);
    expect([...reply.data.matchAll(/"url":"(\/\d)"/g)].map((m) => m[1])).toEqual(['/1', '/2', '/3']);
  });

  it('behind a refused request never reach the upstream, and the connection closes after the refusal', async () => {
    const upstream = await startUpstream();
    const gw = await startGateway({ clusters: [{ name: 'b', endpoints: [upstream.url] }], routes: [{ name: 'all', cluster: 'b' }] });
    cleanup.push(() => gw.close(), () => upstream.close());
    const reply = await rawExchange(Number(new URL(gw.url).port),
      [`GET /first HTTP/1.1\r\n${H}\r\nGET /bad HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\nGET /after HTTP/1.1\r\n${H}\r\nGET /after2 HTTP/1.1\r\n${H}\r\n`]);
    expect([reply.statuses, reply.closed]).toEqual([[200, 400], true]);
    await new Promise((r) => setTimeout(r, 100));
    expect(upstream.requests.map((r) => r.url)).toEqual(['/first']);
  });

  it('all end, with their access-log lines and the upstream exchanges aborted, when the client leaves with requests queued', async () => {
    const held: ServerResponse[] = [];
    const aborted: string[] = [];
    const server = createServer((req, res) => {
      held.push(res);
      res.on('close', () => { if (!res.writableFinished) aborted.push(req.url!); });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const gw = await startGateway({ drainTimeoutMs: 100, clusters: [{ name: 'b', endpoints: [url] }], routes: [{ name: 'all', cluster: 'b' }] });
    cleanup.push(() => gw.close(), () => { server.closeAllConnections(); server.close(); });
    const port = Number(new URL(gw.url).port);
    // Three requests, none answered while the client is there: it leaves after 300 ms.
    await rawExchange(port, [`GET /a HTTP/1.1\r\n${H}\r\nGET /b HTTP/1.1\r\n${H}\r\nGET /c HTTP/1.1\r\n${H}\r\n`], 300);
    await until(() => gw.logs.filter((l) => l.access === true).length === 3);
    const lines = gw.logs.filter((l) => l.access === true).map((l) => [l.path, l.error]).sort();
    expect(lines).toEqual([['/a', 'downstream_remote_disconnect'], ['/b', 'downstream_remote_disconnect'], ['/c', 'downstream_remote_disconnect']]);
    expect((gw.gateway as unknown as { generation: { inflight: number } }).generation.inflight).toBe(0);
    await until(() => aborted.length === 3);
    expect(aborted.sort()).toEqual(['/a', '/b', '/c']);
  });
});
