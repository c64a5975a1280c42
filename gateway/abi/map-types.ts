/**
 * What each `proxy_map_type_t` names (reference §3.6): the one place a map type number is read.
 * The hostcalls resolve the guest's number here, the data plane is handed the result (never the
 * number), and test doubles get the same result, so a map type cannot mean one map in the host
 * and another in the stream behind it.
 *
 *   0..3  the stream's own maps: headers or trailers of one direction. Writable, as far as the
 *         stream allows it at that moment (StreamHost.headerMap decides that).
 *   4..7  the answer being delivered to the root: gRPC initial/trailing metadata, the http-call
 *         answer's headers/trailers. Read-only (Envoy's getMap has no writable map for them).
 *
 * The switch below is exhaustive over MapType: a new map type does not compile until it is placed.
 */
import { Direction, MapType } from './enums.js';
import { HeaderTarget } from './header-check.js';

/** One of the four header maps a stream owns. */
export interface StreamMap {
  readonly type: MapType;
  readonly writable: true;
  readonly direction: Direction;
  readonly trailers: boolean;
  /** What a guest may write into it (the pseudo-headers allowed differ per map). */
  readonly target: HeaderTarget;
}

/** A map of an answer being delivered to the root context: read-only. */
export interface AnswerMap {
  readonly type: MapType;
  readonly writable: false;
  readonly answer: 'grpc' | 'http_call';
  readonly trailers: boolean;
}

export type MapRef = StreamMap | AnswerMap;

function streamMap(type: MapType, direction: Direction, trailers: boolean, target: HeaderTarget): StreamMap {
  return Object.freeze({ type, writable: true, direction, trailers, target });
}

function answerMap(type: MapType, answer: AnswerMap['answer'], trailers: boolean): AnswerMap {
  return Object.freeze({ type, writable: false, answer, trailers });
}

function describe(type: MapType): MapRef {
  switch (type) {
    case MapType.HTTP_REQUEST_HEADERS: return streamMap(type, Direction.REQUEST, false, HeaderTarget.REQUEST);
    case MapType.HTTP_REQUEST_TRAILERS: return streamMap(type, Direction.REQUEST, true, HeaderTarget.TRAILERS);
    case MapType.HTTP_RESPONSE_HEADERS: return streamMap(type, Direction.RESPONSE, false, HeaderTarget.RESPONSE);
    case MapType.HTTP_RESPONSE_TRAILERS: return streamMap(type, Direction.RESPONSE, true, HeaderTarget.TRAILERS);
    case MapType.GRPC_RECEIVE_INITIAL_METADATA: return answerMap(type, 'grpc', false);
    case MapType.GRPC_RECEIVE_TRAILING_METADATA: return answerMap(type, 'grpc', true);
    case MapType.HTTP_CALL_RESPONSE_HEADERS: return answerMap(type, 'http_call', false);
    case MapType.HTTP_CALL_RESPONSE_TRAILERS: return answerMap(type, 'http_call', true);
    default: return unplaced(type);
  }
}

function unplaced(type: never): never {
  throw new TypeError(`map type ${String(type)} has no place in map-types.ts`);
}

/** Indexed by map type: one lookup per hostcall, no allocation. */
const MAPS: MapRef[] = [];
for (const type of Object.values(MapType)) MAPS[type] = describe(type);

/** The map a guest's map type names, or null for a number that is no map type (BAD_ARGUMENT). */
export function resolveMap(type: number): MapRef | null {
  return MAPS[type >>> 0] ?? null;
}
