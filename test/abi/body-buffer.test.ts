import { describe, expect, it } from 'vitest';
import { BodyBuffer } from '../../gateway/abi/body-buffer.js';
import { Status } from '../../gateway/abi/enums.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const content = (buf: BodyBuffer): string => buf.bytes().toString('latin1');

describe('BodyBuffer', () => {
  it('starts empty, or with the initial bytes', () => {
    expect(new BodyBuffer().length).toBe(0);
    expect(content(new BodyBuffer())).toBe('');
    const buf = new BodyBuffer(b('hello'));
    expect([buf.length, content(buf)]).toEqual([5, 'hello']);
  });

  it('joins appended chunks in order; an empty chunk changes nothing', () => {
    const buf = new BodyBuffer();
    buf.append(b('he'));
    buf.append(new Uint8Array(0));
    buf.append(Uint8Array.of(0x6c, 0x6c));
    buf.append(b('o'));
    expect([buf.length, content(buf)]).toEqual([5, 'hello']);
  });

  it('keeps appending after the chunks were joined by a read', () => {
    const buf = new BodyBuffer(b('ab'));
    buf.append(b('cd'));
    expect(content(buf)).toBe('abcd');
    buf.append(b('ef'));
    expect([buf.length, content(buf)]).toEqual([6, 'abcdef']);
  });

  it('slice(start, len) returns len bytes from start, across chunks', () => {
    const buf = new BodyBuffer(b('hel'));
    buf.append(b('lo world'));
    expect(buf.slice(2, 3).toString('latin1')).toBe('llo');
    expect(buf.slice(6, 5).toString('latin1')).toBe('world');
    expect(buf.slice(0, 0).length).toBe(0);
  });

  it('splice (0, 0) prepends', () => {
    const buf = new BodyBuffer(b('hello'));
    expect(buf.splice(0, 0, b('>> '))).toBe(Status.OK);
    expect(content(buf)).toBe('>> hello');
  });

  it.each([5, 6, 0x7fffffff, 0xffffffff])('splice with start %i (>= length) appends', (start) => {
    const buf = new BodyBuffer(b('hello'));
    expect(buf.splice(start, 0, b('!'))).toBe(Status.OK);
    expect([buf.length, content(buf)]).toEqual([6, 'hello!']);
  });

  it.each([5, 6, 0x7fffffff, 0xffffffff])('splice (0, %i) replaces everything', (size) => {
    const buf = new BodyBuffer(b('hello'));
    expect(buf.splice(0, size, b('bye'))).toBe(Status.OK);
    expect([buf.length, content(buf)]).toEqual([3, 'bye']);
  });

  it('splice (0, n < length) drains n bytes then prepends (what Envoy does for start 0)', () => {
    const buf = new BodyBuffer(b('hello'));
    buf.splice(0, 2, b('J'));
    expect(content(buf)).toBe('Jllo');
  });

  it('splice in the middle replaces size bytes at start (beyond what Envoy accepts)', () => {
    const buf = new BodyBuffer(b('hello world'));
    buf.splice(6, 5, b('there'));
    expect(content(buf)).toBe('hello there');
    buf.splice(5, 0, b(','));
    expect(content(buf)).toBe('hello, there');
  });

  it('splice with empty data deletes', () => {
    const buf = new BodyBuffer(b('hello'));
    buf.splice(0, 5, new Uint8Array(0));
    expect([buf.length, content(buf)]).toEqual([0, '']);
  });

  it('splice copies the inserted data', () => {
    const data = b('abc');
    const buf = new BodyBuffer(b('x'));
    buf.splice(1, 0, data);
    data[0] = 0x5a;
    expect(content(buf)).toBe('xabc');
  });

  it('set replaces the content; clear empties it', () => {
    const buf = new BodyBuffer(b('hello'));
    buf.append(b(' world'));
    buf.set(Uint8Array.of(0x6e, 0x65, 0x77));
    expect([buf.length, content(buf)]).toEqual([3, 'new']);
    buf.clear();
    expect([buf.length, content(buf)]).toEqual([0, '']);
    buf.append(b('again'));
    expect(content(buf)).toBe('again');
  });
});
