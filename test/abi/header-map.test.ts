import { describe, expect, it } from 'vitest';
import { HeaderMap, byteSize, firstValue } from '../../gateway/abi/header-map.js';

describe('firstValue', () => {
  it('returns the first value of a key, looked up lower-cased', () => {
    expect(firstValue(['x-a', '1', 'x-a', '2'], 'X-A')).toBe('1');
  });

  it('returns undefined for an absent key, and finds an empty value', () => {
    expect(firstValue(['x-a', '1'], 'x-b')).toBeUndefined();
    expect(firstValue(['x-e', ''], 'x-e')).toBe('');
  });

  it('never matches a value as if it were a key', () => {
    expect(firstValue(['k', 'x-a'], 'x-a')).toBeUndefined();
  });
});

describe('byteSize', () => {
  it('is the sum of key and value lengths (Envoy HeaderMap::byteSize)', () => {
    expect(byteSize([':path', '/a', 'x', '1'])).toBe(9);
    expect(byteSize([])).toBe(0);
  });
});

describe('HeaderMap', () => {
  it('from() lower-cases keys and keeps order and repeats', () => {
    const map = HeaderMap.from([[':Path', '/'], ['X-A', '1'], ['x-a', 'Two']]);
    expect(map.pairs).toEqual([':path', '/', 'x-a', '1', 'x-a', 'Two']);
    expect(map.count).toBe(3);
    expect(map.byteSize).toBe(5 + 1 + 3 + 1 + 3 + 3);
  });

  it('get returns the first value case-insensitively; getAll returns every value in order', () => {
    const map = HeaderMap.from([['x-a', '1'], ['y', '0'], ['x-a', '2']]);
    expect(map.get('X-a')).toBe('1');
    expect(map.getAll('X-A')).toEqual(['1', '2']);
    expect(map.get('z')).toBeUndefined();
    expect(map.getAll('z')).toEqual([]);
  });

  it('add appends with a lower-cased key and keeps existing values', () => {
    const map = HeaderMap.from([['x-a', '1']]);
    map.add('X-A', '2');
    expect(map.pairs).toEqual(['x-a', '1', 'x-a', '2']);
  });

  it('replace leaves one value in the place of the first occurrence', () => {
    const map = HeaderMap.from([['x-a', '1'], ['y', '0'], ['x-a', '2'], ['z', '9']]);
    map.replace('X-A', '3');
    expect(map.pairs).toEqual(['x-a', '3', 'y', '0', 'z', '9']);
  });

  it('replace of the last entry, and of an absent key (appended)', () => {
    const map = HeaderMap.from([['y', '0'], ['x-a', '1']]);
    map.replace('x-a', '2');
    map.replace('New', 'n');
    expect(map.pairs).toEqual(['y', '0', 'x-a', '2', 'new', 'n']);
  });

  it('remove drops every entry of the key and keeps the others in order', () => {
    const map = HeaderMap.from([['x-a', '1'], ['y', '0'], ['x-a', '2'], ['z', '9']]);
    map.remove('X-A');
    expect(map.pairs).toEqual(['y', '0', 'z', '9']);
  });

  it('remove of an absent key changes nothing', () => {
    const map = HeaderMap.from([['y', '0']]);
    map.remove('x');
    expect(map.pairs).toEqual(['y', '0']);
  });

  it('remove looks at keys only, not at values equal to the key', () => {
    const map = new HeaderMap(['a', 'x', 'x', 'v']);
    map.remove('x');
    expect(map.pairs).toEqual(['a', 'x']);
  });

  it('setAll replaces everything, pseudo-headers included, lower-casing the keys', () => {
    const map = HeaderMap.from([[':path', '/'], [':method', 'GET'], ['old', '1']]);
    map.setAll(['New', 'V', 'other', 'w']);
    expect(map.pairs).toEqual(['new', 'V', 'other', 'w']);
    expect(map.count).toBe(2);
  });

  it('keeps header bytes exact (latin1 byte strings)', () => {
    const map = HeaderMap.from([['x-raw', '\xff\x00\xe9']]);
    expect(Buffer.from(map.get('x-raw')!, 'latin1')).toEqual(Buffer.from([0xff, 0x00, 0xe9]));
  });
});
