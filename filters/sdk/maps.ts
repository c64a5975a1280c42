/**
 * Header, trailer and metadata maps (reference §3.6). Keys are matched case-insensitively by the
 * host (it lower-cases them); values are UTF-8 text. Which maps exist depends on the callback:
 * request headers in `onRequestHeaders`, response headers in `onResponseHeaders`, the http-call
 * response maps in `onHttpCallResponse`, and so on. A map that is not available answers
 * `BadArgument` (null from the getters).
 */
import {
  proxy_add_header_map_value, proxy_get_header_map_pairs, proxy_get_header_map_size, proxy_get_header_map_value,
  proxy_remove_header_map_value, proxy_replace_header_map_value, proxy_set_header_map_pairs,
} from "./imports";
import {
  RET_LEN, RET_PTR, RET_U32, bufferLen, bufferPtr, clearReturn, discardReturned, stage, staged0, staged0Len, staged1, staged1Len, takeString,
} from "./memory";
import { serializePairs, takePairs } from "./pairs";
import { Header, MapType, Status } from "./types";

/** Every entry of the map, in order (repeated names repeat). Empty when the map is unavailable. */
export function getHeaderMapPairs(map: MapType): Header[] {
  clearReturn();
  if (proxy_get_header_map_pairs(<u32>map, RET_PTR, RET_LEN) != Status.Ok) {
    discardReturned();
    return [];
  }
  return takePairs();
}

/** Replaces the whole map (pseudo-headers included) with `pairs`. */
export function setHeaderMapPairs(map: MapType, pairs: Header[]): Status {
  const data = serializePairs(pairs);
  return <Status>proxy_set_header_map_pairs(<u32>map, bufferPtr(data), bufferLen(data));
}

/** The first value of `key`, "" for an empty value, or null when the key (or the map) is absent. */
export function getHeaderMapValue(map: MapType, key: string): string | null {
  stage(key);
  clearReturn();
  if (proxy_get_header_map_value(<u32>map, staged0, staged0Len, RET_PTR, RET_LEN) != Status.Ok) {
    discardReturned();
    return null;
  }
  return takeString();
}

/** Appends another `key: value` entry, keeping existing ones. */
export function addHeaderMapValue(map: MapType, key: string, value: string): Status {
  stage(key, value);
  return <Status>proxy_add_header_map_value(<u32>map, staged0, staged0Len, staged1, staged1Len);
}

/** Sets `key` to exactly this one value (added when absent). */
export function replaceHeaderMapValue(map: MapType, key: string, value: string): Status {
  stage(key, value);
  return <Status>proxy_replace_header_map_value(<u32>map, staged0, staged0Len, staged1, staged1Len);
}

/** Removes every entry of `key`; `Ok` when it was absent too. */
export function removeHeaderMapValue(map: MapType, key: string): Status {
  stage(key);
  return <Status>proxy_remove_header_map_value(<u32>map, staged0, staged0Len);
}

/**
 * The host's size figure for the map. NB: Envoy reports the byte size of names and values, not
 * the entry count or the serialised size (reference §3.6); use `getHeaderMapPairs().length` for
 * a count.
 */
export function getHeaderMapSize(map: MapType): u32 {
  store<u32>(RET_U32, 0);
  proxy_get_header_map_size(<u32>map, RET_U32);
  return load<u32>(RET_U32);
}
