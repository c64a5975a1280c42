/**
 * The response writer's last-resort guard, on a real node:http server: whatever Node's writer
 * throws on (here put straight into the flow's maps, past the entry checks) costs that request
 * alone: an empty 502 or 503 before the head went out, a reset after it, one writeFailed report,
 * and the server keeps serving.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HeaderMap } from '../../gateway/abi/header-map.js';
import { ResponseWriter, type WriterOwner } from '../../gateway/proxy/response-writer.js';
import { send } from '../helpers/guests.js';

interface Owner extends WriterOwner {
  responseHeaders: HeaderMap | null;
  responseTrailers: HeaderMap | null;
  localReplyBy: string | null;
  failures: unknown[];
}

function owner(headers: Array<[string, string]>, opts: { localReplyBy?: string; trailers?: Array<[string, string]> } = {}): Owner {
  const failures: unknown[] = [];
  return {
    responseHeaders: HeaderMap.from(headers),
    responseTrailers: opts.trailers ? HeaderMap.from(opts.trailers) : null,
    localReplyBy: opts.localReplyBy ?? null,
    failures,
    responseBody: () => null,
    upstreamController: () => null,
    writeFailed: (err) => { failures.push(err); },
  };
}

describe('the response writer guard', () => {
  let server: Server | null = null;
  afterEach(async () => {
    const s = server;
    server = null;
    if (s) await new Promise<void>((r) => { s.closeAllConnections(); s.close(() => r()); });
  });

  /** A server whose every request is answered by `answer` through a ResponseWriter. */
  async function serve(answer: (res: ServerResponse, req: IncomingMessage) => void): Promise<string> {
    server = createServer((req, res) => (req.url === '/ok' ? res.end('ok') : answer(res, req)));
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async function stillServing(url: string): Promise<void> {
    const next = await send(`${url}/ok`);
    expect([next.status, next.body.toString()]).toEqual([200, 'ok']);
  }

  it('answers an empty 502 for an upstream answer whose head Node refuses, and reports it once', async () => {
    const o = owner([[':status', '200'], ['x-a', 'a\r\nx-injected: 1']]);
    const url = await serve((res) => new ResponseWriter(res, o).write(Buffer.from('body'), true));
    const reply = await send(`${url}/bad`);
    expect([reply.status, reply.headers['content-length'], reply.body.length, reply.headers['x-injected']]).toEqual([502, '0', 0, undefined]);
    expect(o.failures).toHaveLength(1);
    expect((o.failures[0] as { code?: string }).code).toBe('ERR_INVALID_CHAR');
    await stillServing(url);
  });

  it('answers 503 when a filter made the reply, and for a status Node cannot write', async () => {
    const o = owner([[':status', '99999']], { localReplyBy: 'deny' });
    const url = await serve((res) => new ResponseWriter(res, o).end(Buffer.from('x')));
    const reply = await send(`${url}/bad`);
    expect([reply.status, reply.body.length]).toEqual([503, 0]);
    expect((o.failures[0] as { code?: string }).code).toBe('ERR_HTTP_INVALID_STATUS_CODE');
    await stillServing(url);
  });

  it('resets the stream when trailers Node refuses come after the head, and ignores writes after that', async () => {
    const o = owner([[':status', '200']], { trailers: [['x-t', 'a\nb']] });
    let writer: ResponseWriter | null = null;
    const url = await serve((res) => {
      writer = new ResponseWriter(res, o);
      writer.write(Buffer.from('part'), false);
      writer.write(Buffer.alloc(0), true);
      writer.write(Buffer.from('late'), true);
      writer.end(Buffer.from('later'));
    });
    await expect(send(`${url}/bad`)).rejects.toThrow();
    expect(o.failures).toHaveLength(1);
    expect(writer!.headSent).toBe(true);
    await stillServing(url);
  });

  it('writes nothing after the end of the stream (no write-after-end error)', async () => {
    const o = owner([[':status', '200']]);
    const url = await serve((res) => {
      const w = new ResponseWriter(res, o);
      w.write(Buffer.from('ok'), true);
      w.write(Buffer.from('more'), true);
    });
    const reply = await send(`${url}/twice`);
    expect([reply.status, reply.body.toString()]).toEqual([200, 'ok']);
    expect(o.failures).toEqual([]);
    await stillServing(url);
  });
});
