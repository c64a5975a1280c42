/**
 * API key lists: `[{"name": "partner-a", "sha256": "<64 hex digits>"}, …]`, as configured, as
 * served by the key server, and as published in shared data. Keys are kept as SHA-256 digests only;
 * a presented key is hashed and compared with every digest in constant time.
 */
import { JsonValue, quoteJsonString } from "../sdk/index";
import { constantTimeEqual, hex } from "../sdk/crypto/index";
import { Checked, hasControl, q } from "./checks";

export class ApiKey {
  constructor(public name: string, public digest: Uint8Array) {}
}

/**
 * Reads a key list at `path` (for messages). Names may repeat (a partner holding an old and a new
 * key during a rotation); digests may not, since a key must identify one name.
 */
export function readKeyList(path: string, v: JsonValue): Checked<ApiKey[] | null> {
  if (!v.isArray()) return new Checked<ApiKey[] | null>(null, q(path) + " must be an array of {\"name\", \"sha256\"} objects, got " + v.kindName());
  const keys = new Array<ApiKey>();
  for (let i = 0; i < v.length; i++) {
    const at = path + "[" + i.toString() + "]";
    const entry = v.at(i)!;
    if (!entry.isObject()) return new Checked<ApiKey[] | null>(null, q(at) + " must be an object {\"name\", \"sha256\"}, got " + entry.kindName());
    const fields = entry.keys();
    for (let j = 0; j < fields.length; j++) {
      if (fields[j] != "name" && fields[j] != "sha256") {
        return new Checked<ApiKey[] | null>(null, q(at) + " has an unknown field " + q(fields[j]) + " (expected \"name\" and \"sha256\")");
      }
    }
    const name = entry.get("name");
    if (name === null || !name.isString() || name.asString().length == 0) {
      return new Checked<ApiKey[] | null>(null, q(at + ".name") + " must be a non-empty string");
    }
    if (hasControl(name.asString())) return new Checked<ApiKey[] | null>(null, q(at + ".name") + " contains a control character");
    const hash = entry.get("sha256");
    const parsed: Uint8Array | null = hash === null || !hash.isString() ? null : hexDigest(hash.asString());
    if (parsed === null) {
      return new Checked<ApiKey[] | null>(null, q(at + ".sha256") + " must be the SHA-256 of the key as 64 hex digits");
    }
    const digest = parsed!;
    for (let j = 0; j < keys.length; j++) {
      if (constantTimeEqual(keys[j].digest, digest)) {
        return new Checked<ApiKey[] | null>(null, q(at) + " repeats the key of " + q(path + "[" + j.toString() + "]"));
      }
    }
    keys.push(new ApiKey(name.asString(), digest));
  }
  return new Checked<ApiKey[] | null>(keys, "");
}

/**
 * The key whose digest is `digest`, or null. Every digest is compared, in full, whatever matches,
 * so the time taken does not tell which key (or which byte) matched.
 */
export function findKey(keys: ApiKey[], digest: Uint8Array): ApiKey | null {
  let found: ApiKey | null = null;
  for (let i = 0; i < keys.length; i++) {
    const key = unchecked(keys[i]);
    const same = constantTimeEqual(key.digest, digest);
    if (same && found === null) found = key;
  }
  return found;
}

/** The canonical text the sync service publishes: `{"keys":[{"name":…,"sha256":…},…]}`. */
export function keyListJson(keys: ApiKey[]): string {
  const parts = new Array<string>();
  for (let i = 0; i < keys.length; i++) {
    parts.push("{\"name\":" + quoteJsonString(keys[i].name) + ",\"sha256\":\"" + hex(keys[i].digest) + "\"}");
  }
  return "{\"keys\":[" + parts.join(",") + "]}";
}

/** The names of `keys`, comma-separated, for log lines. */
export function keyNames(keys: ApiKey[]): string {
  const names = new Array<string>();
  for (let i = 0; i < keys.length; i++) names.push(keys[i].name);
  return names.join(", ");
}

/** 32 bytes from 64 hex digits (either case), or null. */
function hexDigest(s: string): Uint8Array | null {
  if (s.length != 64) return null;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) {
    const hi = hexValue(s.charCodeAt(2 * i));
    const lo = hexValue(s.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) return null;
    out[i] = <u8>((hi << 4) | lo);
  }
  return out;
}

function hexValue(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}
