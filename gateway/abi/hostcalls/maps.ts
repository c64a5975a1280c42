/**
 * Header, trailer and metadata maps (reference §3.6, §6.10). Which map a map type names, and
 * whether it can be written, is resolved in one place (map-types.ts): the stream's maps 0–3, the
 * gRPC result 4/5 and the http-call answer 6/7 being delivered to the root (also reachable when the
 * effective context is a stream, as Envoy reads them through rootContext()).
 *
 * Writes go to the stream's maps only (Envoy's getMap has no other) and are checked where they
 * enter (header-check.ts): a name, value or pseudo-header the host could not send, or a map grown
 * past its limit, answers BAD_ARGUMENT and leaves the map as it was.
 */
import { AbiVersion, Status } from '../enums.js';
import { fitsHeaderMap, isHeaderEntry, isHeaderList } from '../header-check.js';
import { byteSize, firstValue, type HeaderMap } from '../header-map.js';
import { resolveMap, type AnswerMap, type MapRef, type StreamMap } from '../map-types.js';
import type { Pairs } from '../pairs.js';
import { readPairs, returnLatin1, returnPairs } from '../returns.js';
import type { WasmVm } from '../vm.js';
import type { HostcallTable } from './table.js';

/** The pairs of an answer map, or null when no such answer is being delivered now. */
function answerPairs(vm: WasmVm, map: AnswerMap): Pairs | null {
  const root = vm.target()?.root;
  if (root === undefined) return null;
  if (map.answer === 'grpc') return (map.trailers ? root.grpc?.trailingMetadata : root.grpc?.initialMetadata) ?? null;
  return (map.trailers ? root.callout?.trailers : root.callout?.headers) ?? null;
}

function streamHeaderMap(vm: WasmVm, map: StreamMap, write: boolean): HeaderMap | null {
  const ctx = vm.target();
  return ctx !== null && ctx.kind === 'stream' ? ctx.host.headerMap(map, write) : null;
}

/** Pairs of `map` readable now, or null when the map is not available. */
function readablePairs(vm: WasmVm, map: MapRef): Pairs | null {
  return map.writable ? (streamHeaderMap(vm, map, false)?.pairs ?? null) : answerPairs(vm, map);
}

/** The stream map a write to `type` goes to; null (BAD_ARGUMENT) for no map type or a read-only one. */
function writableMap(type: number): StreamMap | null {
  const map = resolveMap(type);
  return map !== null && map.writable ? map : null;
}

export function mapHostcalls(vm: WasmVm): HostcallTable {
  const legacy = vm.abiVersion === AbiVersion.V0_1_0;
  return {
    proxy_get_header_map_pairs(type: number, ptrPtr: number, sizePtr: number): number {
      const map = resolveMap(type);
      if (map === null) return Status.BAD_ARGUMENT;
      // An unavailable map reads as empty (cpp-host and Envoy): OK with ptr=0, size=0.
      returnPairs(vm, ptrPtr, sizePtr, readablePairs(vm, map) ?? []);
      return Status.OK;
    },

    proxy_set_header_map_pairs(type: number, ptr: number, len: number): number {
      const map = writableMap(type);
      if (map === null) return Status.BAD_ARGUMENT;
      const pairs = readPairs(vm, ptr, len);
      // cpp-host silently clears the map on malformed input; refusing it loses nothing.
      if (pairs === null) return Status.BAD_ARGUMENT;
      for (let i = 0; i < pairs.length; i += 2) pairs[i] = pairs[i].toLowerCase();
      if (!isHeaderList(map.target, pairs)) return Status.BAD_ARGUMENT;
      const target = streamHeaderMap(vm, map, true);
      if (target === null) return Status.BAD_ARGUMENT;
      target.setAll(pairs);
      return Status.OK;
    },

    proxy_get_header_map_value(type: number, keyPtr: number, keyLen: number, ptrPtr: number, sizePtr: number): number {
      const map = resolveMap(type);
      if (map === null) return Status.BAD_ARGUMENT;
      const key = vm.mem.latin1(keyPtr, keyLen);
      const pairs = readablePairs(vm, map);
      if (pairs === null) {
        // Envoy: BAD_ARGUMENT, except in the access-log phase, where maps may be missing: NOT_FOUND
        // there, or OK with an empty value for 0.1.0 modules.
        const ctx = vm.target();
        if (ctx === null || ctx.kind !== 'stream' || !ctx.inLog) return Status.BAD_ARGUMENT;
        if (!legacy) return Status.NOT_FOUND;
        returnLatin1(vm, ptrPtr, sizePtr, '');
        return Status.OK;
      }
      const value = firstValue(pairs, key);
      if (value === undefined) {
        // 0.1.0 answered OK with an empty value for a missing key; Envoy keeps that for 0.1.0 modules.
        if (!legacy) return Status.NOT_FOUND;
        returnLatin1(vm, ptrPtr, sizePtr, '');
        return Status.OK;
      }
      returnLatin1(vm, ptrPtr, sizePtr, value);
      return Status.OK;
    },

    proxy_add_header_map_value(type: number, keyPtr: number, keyLen: number, valPtr: number, valLen: number): number {
      const map = writableMap(type);
      if (map === null) return Status.BAD_ARGUMENT;
      const key = vm.mem.latin1(keyPtr, keyLen).toLowerCase();
      const value = vm.mem.latin1(valPtr, valLen);
      if (!isHeaderEntry(map.target, key, value)) return Status.BAD_ARGUMENT;
      const target = streamHeaderMap(vm, map, true);
      if (target === null || !fitsHeaderMap(target.byteSize, key.length + value.length)) return Status.BAD_ARGUMENT;
      target.add(key, value);
      return Status.OK;
    },

    proxy_replace_header_map_value(type: number, keyPtr: number, keyLen: number, valPtr: number, valLen: number): number {
      const map = writableMap(type);
      if (map === null) return Status.BAD_ARGUMENT;
      const key = vm.mem.latin1(keyPtr, keyLen).toLowerCase();
      const value = vm.mem.latin1(valPtr, valLen);
      if (!isHeaderEntry(map.target, key, value)) return Status.BAD_ARGUMENT;
      const target = streamHeaderMap(vm, map, true);
      // NB: the old value's bytes still count: the limit is a bound, not an exact size.
      if (target === null || !fitsHeaderMap(target.byteSize, key.length + value.length)) return Status.BAD_ARGUMENT;
      target.replace(key, value);
      return Status.OK;
    },

    proxy_remove_header_map_value(type: number, keyPtr: number, keyLen: number): number {
      const map = writableMap(type);
      if (map === null) return Status.BAD_ARGUMENT;
      const key = vm.mem.latin1(keyPtr, keyLen);
      const target = streamHeaderMap(vm, map, true);
      if (target === null) return Status.BAD_ARGUMENT;
      target.remove(key);
      return Status.OK;
    },

    /** Envoy writes HeaderMap::byteSize() (keys + values), not the serialised size (Appendix A.11). */
    proxy_get_header_map_size(type: number, sizePtr: number): number {
      const map = resolveMap(type);
      if (map === null) return Status.BAD_ARGUMENT;
      const pairs = readablePairs(vm, map);
      if (pairs === null) return Status.BAD_ARGUMENT;
      vm.mem.setU32(sizePtr, byteSize(pairs));
      return Status.OK;
    },
  };
}
