import { describe, expect, it } from 'vitest';
import { Direction, MapType } from '../../gateway/abi/enums.js';
import { HeaderTarget } from '../../gateway/abi/header-check.js';
import { resolveMap } from '../../gateway/abi/map-types.js';

describe('map types', () => {
  it('names the stream\'s four maps 0–3 by direction and part, writable, each with its header check', () => {
    expect([0, 1, 2, 3].map(resolveMap)).toEqual([
      { type: 0, writable: true, direction: Direction.REQUEST, trailers: false, target: HeaderTarget.REQUEST },
      { type: 1, writable: true, direction: Direction.REQUEST, trailers: true, target: HeaderTarget.TRAILERS },
      { type: 2, writable: true, direction: Direction.RESPONSE, trailers: false, target: HeaderTarget.RESPONSE },
      { type: 3, writable: true, direction: Direction.RESPONSE, trailers: true, target: HeaderTarget.TRAILERS },
    ]);
  });

  it('names the gRPC metadata 4/5 and the http-call answer 6/7 as read-only answer maps, never a stream map', () => {
    expect([4, 5, 6, 7].map(resolveMap)).toEqual([
      { type: 4, writable: false, answer: 'grpc', trailers: false },
      { type: 5, writable: false, answer: 'grpc', trailers: true },
      { type: 6, writable: false, answer: 'http_call', trailers: false },
      { type: 7, writable: false, answer: 'http_call', trailers: true },
    ]);
  });

  it('places every MapType value, each under its own number', () => {
    for (const type of Object.values(MapType)) expect(resolveMap(type)?.type).toBe(type);
  });

  it.each([8, 100, -1, 0xffffffff])('knows no map type %d', (type) => {
    expect(resolveMap(type)).toBeNull();
  });

  it('answers the same frozen description every time (one lookup per hostcall, no allocation)', () => {
    expect(resolveMap(6)).toBe(resolveMap(6));
    expect(Object.isFrozen(resolveMap(3))).toBe(true);
  });
});
