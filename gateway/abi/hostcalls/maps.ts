/**
 * Header, trailer and metadata maps (reference §3.6, §6.10). Maps 0–3 belong to the stream, 4/5 to
 * the gRPC result and 6/7 to the http-call answer being delivered to the root (also reachable when
 * the effective context is a stream, as Envoy reads them through rootContext()).
 *
 * Writes go to the stream maps 0..3 only (Envoy's getMap has no other) and are checked where they
 * enter (header-check.ts): a name, value or pseudo-header the host could not send, or a map grown
 * past its limit, answers BAD_ARGUMENT and leaves the map as it was.
 */
import { AbiVersion, MAX_MAP_TYPE, MapType, Status } from '../enums.js';
import { fitsHeaderMap, isHeaderEntry, isHeaderList, targetOfMap } from '../header-check.js';
import { byteSize, firstValue, type HeaderMap } from '../header-map.js';
import type { Pairs } from '../pairs.js';
import { readPairs, returnLatin1, returnPairs } from '../returns.js';
import type { WasmVm } from '../vm.js';
import type { HostcallTable } from './table.js';

/** Read-only pairs of a callout map, or undefined when `type` is not a callout map. */
function calloutPairs(vm: WasmVm, type: number): Pairs | null | undefined {
  if (type < MapType.GRPC_RECEIVE_INITIAL_METADATA) return undefined;
  const root = vm.target()?.root;
  if (root === undefined) return null;
  switch (type) {
    case MapType.GRPC_RECEIVE_INITIAL_METADATA: return root.grpc?.initialMetadata ?? null;
    case MapType.GRPC_RECEIVE_TRAILING_METADATA: return root.grpc?.trailingMetadata ?? null;
    case MapType.HTTP_CALL_RESPONSE_HEADERS: return root.callout?.headers ?? null;
    default: return root.callout?.trailers ?? null;
  }
}

function streamMap(vm: WasmVm, type: number, write: boolean): HeaderMap | null {
  const ctx = vm.target();
  return ctx !== null && ctx.kind === 'stream' ? ctx.host.headerMap(type, write) : null;
}

/** Pairs of map `type` readable now, or null when the map is not available. */
function readablePairs(vm: WasmVm, type: number): Pairs | null {
  const callout = calloutPairs(vm, type);
  if (callout !== undefined) return callout;
  return streamMap(vm, type, false)?.pairs ?? null;
}

export function mapHostcalls(vm: WasmVm): HostcallTable {
  const legacy = vm.abiVersion === AbiVersion.V0_1_0;
  return {
    proxy_get_header_map_pairs(type: number, ptrPtr: number, sizePtr: number): number {
      if (type >>> 0 > MAX_MAP_TYPE) return Status.BAD_ARGUMENT;
      // An unavailable map reads as empty (cpp-host and Envoy): OK with ptr=0, size=0.
      returnPairs(vm, ptrPtr, sizePtr, readablePairs(vm, type) ?? []);
      return Status.OK;
    },

    proxy_set_header_map_pairs(type: number, ptr: number, len: number): number {
      if (type >>> 0 > MapType.HTTP_RESPONSE_TRAILERS) return Status.BAD_ARGUMENT;
      const pairs = readPairs(vm, ptr, len);
      // cpp-host silently clears the map on malformed input; refusing it loses nothing.
      if (pairs === null) return Status.BAD_ARGUMENT;
      for (let i = 0; i < pairs.length; i += 2) pairs[i] = pairs[i].toLowerCase();
      if (!isHeaderList(targetOfMap(type), pairs)) return Status.BAD_ARGUMENT;
      const map = streamMap(vm, type, true);
      if (map === null) return Status.BAD_ARGUMENT;
      map.setAll(pairs);
      return Status.OK;
    },

    proxy_get_header_map_value(type: number, keyPtr: number, keyLen: number, ptrPtr: number, sizePtr: number): number {
      if (type >>> 0 > MAX_MAP_TYPE) return Status.BAD_ARGUMENT;
      const key = vm.mem.latin1(keyPtr, keyLen);
      const pairs = readablePairs(vm, type);
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
      if (type >>> 0 > MapType.HTTP_RESPONSE_TRAILERS) return Status.BAD_ARGUMENT;
      const key = vm.mem.latin1(keyPtr, keyLen).toLowerCase();
      const value = vm.mem.latin1(valPtr, valLen);
      if (!isHeaderEntry(targetOfMap(type), key, value)) return Status.BAD_ARGUMENT;
      const map = streamMap(vm, type, true);
      if (map === null || !fitsHeaderMap(map.byteSize, key.length + value.length)) return Status.BAD_ARGUMENT;
      map.add(key, value);
      return Status.OK;
    },

    proxy_replace_header_map_value(type: number, keyPtr: number, keyLen: number, valPtr: number, valLen: number): number {
      if (type >>> 0 > MapType.HTTP_RESPONSE_TRAILERS) return Status.BAD_ARGUMENT;
      const key = vm.mem.latin1(keyPtr, keyLen).toLowerCase();
      const value = vm.mem.latin1(valPtr, valLen);
      if (!isHeaderEntry(targetOfMap(type), key, value)) return Status.BAD_ARGUMENT;
      const map = streamMap(vm, type, true);
      // NB: the old value's bytes still count: the limit is a bound, not an exact size.
      if (map === null || !fitsHeaderMap(map.byteSize, key.length + value.length)) return Status.BAD_ARGUMENT;
      map.replace(key, value);
      return Status.OK;
    },

    proxy_remove_header_map_value(type: number, keyPtr: number, keyLen: number): number {
      if (type >>> 0 > MapType.HTTP_RESPONSE_TRAILERS) return Status.BAD_ARGUMENT;
      const key = vm.mem.latin1(keyPtr, keyLen);
      const map = streamMap(vm, type, true);
      if (map === null) return Status.BAD_ARGUMENT;
      map.remove(key);
      return Status.OK;
    },

    /** Envoy writes HeaderMap::byteSize() (keys + values), not the serialised size (Appendix A.11). */
    proxy_get_header_map_size(type: number, sizePtr: number): number {
      if (type >>> 0 > MAX_MAP_TYPE) return Status.BAD_ARGUMENT;
      const pairs = readablePairs(vm, type);
      if (pairs === null) return Status.BAD_ARGUMENT;
      vm.mem.setU32(sizePtr, byteSize(pairs));
      return Status.OK;
    },
  };
}
