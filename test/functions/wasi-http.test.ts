/**
 * The gateway's wasi:http as a hostile guest meets it: what it hands over is checked where it
 * enters, and refused with the WIT's own errors, never thrown into the gateway.
 */
import { describe, expect, it } from 'vitest';
import { MAX_RESPONSE_HEADERS, httpInterfaces, type HttpHost } from '../../gateway/functions/wasi-http.js';

/** The resources as jco hands them to the guest: untyped. */
type Ctor<T> = new (...args: any[]) => T;

function host(): HttpHost & { said: string[] } {
  const said: string[] = [];
  return {
    said,
    blocker: { wait: () => {} },
    bodyLimit: 1024,
    allowedHosts: new Set(['backend']),
    respond: (status, headers) => said.push(`head ${status} ${headers.length / 2}`),
    data: (chunk) => said.push(`data ${chunk.length}`),
    end: () => said.push('end'),
    fail: (message) => said.push(`fail ${message}`),
    fetch: () => ({ answer: null }),
  };
}

const bytes = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'latin1'));

describe('the wasi:http a function sees', () => {
  const h = host();
  const http = httpInterfaces(h);
  const t = http.types as Record<string, Ctor<any> & Record<string, (...args: any[]) => any>>;

  it('refuses field names that are not tokens, values with CR, LF or NUL, and hop-by-hop fields', () => {
    expect(() => t.Fields!.fromList([['x-ok', bytes('fine')]])).not.toThrow();
    expect(() => t.Fields!.fromList([['bad name', bytes('v')]])).toThrow(expect.objectContaining({ tag: 'invalid-syntax' }));
    for (const value of ['a\r\nx-injected: 1', 'a\nb', 'a\0b']) {
      expect(() => t.Fields!.fromList([['x-v', bytes(value)]])).toThrow(expect.objectContaining({ tag: 'invalid-syntax' }));
    }
    for (const name of ['connection', 'Transfer-Encoding', 'upgrade', 'host']) {
      expect(() => t.Fields!.fromList([[name, bytes('v')]])).toThrow(expect.objectContaining({ tag: 'forbidden' }));
    }
  });

  it('refuses a status outside 200-599: 1xx is never a final answer', () => {
    const response = new t.OutgoingResponse!(new t.Fields!());
    for (const status of [0, 99, 100, 101, 199, 600, 99999, 1.5]) expect(() => response.setStatusCode(status)).toThrow();
    response.setStatusCode(204);
    expect(response.statusCode()).toBe(204);
  });

  it('fails a response whose head has too many fields, instead of writing it', () => {
    const fields = new t.Fields!();
    for (let i = 0; i <= MAX_RESPONSE_HEADERS; i++) fields.append(`x-${i}`, bytes('v'));
    const { outparam } = http.incoming({ method: 'GET', scheme: 'http', authority: 'a', pathWithQuery: '/', headers: [], body: new Uint8Array(0) });
    t.ResponseOutparam!.set(outparam, { tag: 'ok', val: new t.OutgoingResponse!(fields) });
    expect(h.said.at(-1)).toMatch(/^fail the function's response head has 101 fields/);
  });

  it('bounds a body by the limit: the write past it fails, what went before stays', () => {
    const response = new t.OutgoingResponse!(new t.Fields!());
    const stream = response.body().write();
    stream.blockingWriteAndFlush(new Uint8Array(1000));
    expect(() => stream.blockingWriteAndFlush(new Uint8Array(100))).toThrow(expect.objectContaining({ tag: 'last-operation-failed' }));
  });

  it('refuses an outgoing request to any host but an allowed cluster, before anything is sent', () => {
    const handle = (http.outgoingHandler as { handle(r: unknown, o: unknown): unknown }).handle;
    for (const authority of ['example.com', '127.0.0.1:9', 'backend.evil']) {
      const request = new t.OutgoingRequest!(new t.Fields!());
      request.setAuthority(authority);
      expect(() => handle(request, undefined)).toThrow(expect.objectContaining({ tag: 'HTTP-request-denied' }));
    }
    const bad = new t.OutgoingRequest!(new t.Fields!());
    expect(() => bad.setAuthority('backend\r\nx: 1')).toThrow();
    expect(() => bad.setPathWithQuery('/a b')).toThrow();
  });
});
