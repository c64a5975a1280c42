import { describe, expect, it } from 'vitest';
import { MAX_PAIRS_COUNT } from '../../gateway/abi/limits.js';
import { decodePairs, encodePairs, pairsSize, type Pairs } from '../../gateway/abi/pairs.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** The reference's worked example (§5.10) with the real bytes: {"a":"1","b":"22"}, 29 bytes. */
const GOLDEN = '02000000' + '01000000' + '01000000' + '01000000' + '02000000' + '61003100' + '6200323200';

describe('the pairs codec', () => {
  it('encodes the reference example to its exact 29 bytes', () => {
    const bytes = encodePairs(['a', '1', 'b', '22']);
    expect(bytes.length).toBe(29);
    expect(hex(bytes)).toBe(GOLDEN);
    expect(pairsSize(['a', '1', 'b', '22'])).toBe(29);
  });

  it('decodes the exact bytes of the reference example', () => {
    expect(decodePairs(Buffer.from(GOLDEN, 'hex'))).toEqual(['a', '1', 'b', '22']);
  });

  it('encodes an empty map as zero bytes, which the host returns as ptr=0, len=0', () => {
    expect(encodePairs([]).length).toBe(0);
    expect(pairsSize([])).toBe(0);
  });

  it('accepts the three encodings of an empty map: nothing, a single NUL and N=0', () => {
    expect(decodePairs(new Uint8Array(0))).toEqual([]);
    expect(decodePairs(Uint8Array.of(0))).toEqual([]);
    expect(decodePairs(Uint8Array.of(0, 0, 0, 0))).toEqual([]);
  });

  it('keeps empty keys and values with their terminators', () => {
    const bytes = encodePairs(['', '']);
    expect(hex(bytes)).toBe('01000000' + '00000000' + '00000000' + '0000');
    expect(decodePairs(bytes)).toEqual(['', '']);
  });

  it('round-trips arbitrary bytes, non-UTF-8 included, as byte strings', () => {
    const value = String.fromCharCode(0xff, 0x00, 0x80, 0xc3, 0xa9);
    const bytes = encodePairs(['x-bin', value]);
    expect(hex(bytes.subarray(12))).toBe(hex(Buffer.from('x-bin\0', 'latin1')) + 'ff0080c3a900');
    expect(decodePairs(bytes)).toEqual(['x-bin', value]);
  });

  it('rejects a missing terminator, a length past the end and trailing bytes', () => {
    const good = Buffer.from(GOLDEN, 'hex');
    const noNul = Buffer.from(good);
    noNul[21] = 0x21; // the NUL after "a"
    expect(decodePairs(noNul)).toBeNull();
    expect(decodePairs(good.subarray(0, 28))).toBeNull();
    expect(decodePairs(Buffer.concat([good, Buffer.of(0)]))).toBeNull();
    const bigLen = Buffer.from(good);
    bigLen.writeUInt32LE(0xffffffff, 4);
    expect(decodePairs(bigLen)).toBeNull();
  });

  it('rejects a count over the limit and a count whose size table runs past the end', () => {
    const count = Buffer.alloc(4);
    count.writeUInt32LE(MAX_PAIRS_COUNT + 1);
    expect(decodePairs(count)).toBeNull();
    count.writeUInt32LE(3);
    expect(decodePairs(count)).toBeNull();
  });

  it('accepts exactly the maximum number of pairs', () => {
    const pairs: Pairs = [];
    for (let i = 0; i < MAX_PAIRS_COUNT; i++) pairs.push(`k${i}`, `v${i}`);
    expect(decodePairs(encodePairs(pairs))).toEqual(pairs);
  });

  describe('property tests', () => {
    // A small deterministic PRNG so failures reproduce.
    let seed = 0x2545f491;
    const rand = (n: number): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const randomString = (): string => {
      const len = rand(4) === 0 ? 0 : rand(40);
      let s = '';
      for (let i = 0; i < len; i++) s += String.fromCharCode(rand(256));
      return s;
    };

    it('decodes what it encodes, and sizes it exactly, for 2000 random maps', () => {
      for (let round = 0; round < 2000; round++) {
        const pairs: Pairs = [];
        const n = rand(20);
        for (let i = 0; i < n; i++) pairs.push(randomString(), randomString());
        const bytes = encodePairs(pairs);
        expect(bytes.length).toBe(pairsSize(pairs));
        expect(decodePairs(bytes)).toEqual(pairs);
      }
    });

    it('never throws and never over-reads on 5000 mutated or truncated blobs', () => {
      for (let round = 0; round < 5000; round++) {
        const pairs: Pairs = [];
        const n = 1 + rand(6);
        for (let i = 0; i < n; i++) pairs.push(randomString(), randomString());
        const bytes = Buffer.from(encodePairs(pairs));
        const mutated = rand(2) === 0 ? bytes.subarray(0, rand(bytes.length)) : bytes;
        for (let flips = rand(4); flips > 0 && mutated.length > 0; flips--) mutated[rand(mutated.length)] = rand(256);
        const decoded = decodePairs(mutated);
        if (decoded !== null) {
          // Whatever decodes must re-encode to exactly the input: no bytes invented or skipped.
          expect(hex(encodePairs(decoded))).toBe(decoded.length === 0 && mutated.length <= 4 ? hex(encodePairs([])) : hex(mutated));
        }
      }
    });
  });
});
