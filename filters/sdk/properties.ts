/**
 * Properties (reference §3.13, §5.11, §6.9): values the host exposes by path, such as
 * `["request", "path"]`, `["source", "address"]`, `["plugin_root_id"]` or `["node", "id"]`.
 * The segments are sent joined by NUL bytes. Values are raw bytes typed by the property: strings
 * as UTF-8, integers as 8 bytes little-endian, booleans as one byte, maps in the pairs format.
 */
import { proxy_get_property, proxy_set_property } from "./imports";
import { RET_LEN, RET_PTR, bufferLen, bufferPtr, clearReturn, discardReturned, stagePath, staged0, staged0Len, takeBytes, takeString } from "./memory";
import { takePairs } from "./pairs";
import { Header, Result, Status } from "./types";

function fetch(path: string[]): Status {
  stagePath(path);
  clearReturn();
  const status = <Status>proxy_get_property(staged0, staged0Len, RET_PTR, RET_LEN);
  if (status != Status.Ok) discardReturned();
  return status;
}

/** The raw value at `path`, or null when the host has none here (NOT_FOUND and other errors). */
export function getProperty(path: string[]): ArrayBuffer | null {
  return fetch(path) == Status.Ok ? takeBytes() : null;
}

/** A string property (`request.path`, `plugin_name`, `node.id`…), or null when absent. */
export function getPropertyString(path: string[]): string | null {
  return fetch(path) == Status.Ok ? takeString() : null;
}

/** An integer property (`response.code`, `source.port`…): 8 bytes little-endian. */
export function getPropertyInt(path: string[]): Result<i64> {
  const status = fetch(path);
  if (status != Status.Ok) return new Result<i64>(status, 0);
  const bytes = takeBytes();
  if (bytes.byteLength != 8) return new Result<i64>(Status.SerializationFailure, 0);
  return new Result<i64>(Status.Ok, load<i64>(changetype<usize>(bytes)));
}

/** A boolean property (`connection.mtls`…): one byte. */
export function getPropertyBool(path: string[]): Result<bool> {
  const status = fetch(path);
  if (status != Status.Ok) return new Result<bool>(status, false);
  const bytes = takeBytes();
  return new Result<bool>(Status.Ok, bytes.byteLength > 0 && load<u8>(changetype<usize>(bytes)) != 0);
}

/** A map property (`request.headers`…) decoded from the pairs format, or null when absent. */
export function getPropertyMap(path: string[]): Header[] | null {
  return fetch(path) == Status.Ok ? takePairs() : null;
}

/**
 * Stores `value` under `path` for the current request (Envoy: filter state `wasm.<path>`); a later
 * `getProperty` of the same path reads it back. Root contexts have no request: `NotFound`.
 */
export function setProperty(path: string[], value: ArrayBuffer | null): Status {
  stagePath(path);
  return <Status>proxy_set_property(staged0, staged0Len, bufferPtr(value), bufferLen(value));
}

/** `setProperty` with a UTF-8 string value. */
export function setPropertyString(path: string[], value: string): Status {
  return setProperty(path, String.UTF8.encode(value));
}
