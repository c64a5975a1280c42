/**
 * The api-key filter's configuration, checked once in `onConfigure`:
 *
 *   {"keys": [{"name": "partner-a", "sha256": "<hex>"}], "header": "x-api-key", "query": "api_key",
 *    "forwardNameHeader": "x-api-key-name", "removeKey": true, "sharedDataKey": "api-key/keys/v1"}
 *
 * Everything but `keys` is optional; with neither `header` nor `query` the key is read from the
 * `x-api-key` header.
 */
import { Checked, JsonValue, checkKeys, quote as q, readBool, readConfigObject } from "../sdk/index";
import { headerName, text } from "./checks";
import { ApiKey, readKeyList } from "./keys";

export const DEFAULT_SHARED_DATA_KEY = "api-key/keys/v1";

export class ApiKeyConfig {
  keys: ApiKey[] = [];
  /** Request header holding the key ("" when not read from a header). */
  header: string = "";
  /** Query parameter holding the key ("" when not read from the query). */
  query: string = "";
  forwardNameHeader: string = "x-api-key-name";
  removeKey: bool = true;
  sharedDataKey: string = DEFAULT_SHARED_DATA_KEY;
}

const EXAMPLE = "{\"keys\":[{\"name\":\"partner-a\",\"sha256\":\"<64 hex digits>\"}],\"header\":\"x-api-key\"}";
const KNOWN = ["keys", "header", "query", "forwardNameHeader", "removeKey", "sharedDataKey"];

function refuse(error: string): Checked<ApiKeyConfig | null> {
  return new Checked<ApiKeyConfig | null>(null, error);
}

export function parseApiKeyConfig(bytes: ArrayBuffer | null): Checked<ApiKeyConfig | null> {
  const loaded = readConfigObject(bytes, EXAMPLE);
  if (!loaded.ok) return refuse(loaded.error);
  const doc = loaded.value!;
  const unknown = checkKeys(doc, KNOWN, KNOWN.join(", "));
  if (unknown.length > 0) return refuse(unknown);
  const config = new ApiKeyConfig();

  const keys = doc.get("keys");
  if (keys === null) return refuse("\"keys\" is required: a list such as " + EXAMPLE + " (it may be empty when a sync service publishes the keys)");
  const list = readKeyList("keys", keys);
  if (list.value === null) return refuse(list.error);
  config.keys = list.value!;

  const header = doc.get("header");
  if (header !== null) {
    const name = headerName("header", header);
    if (name.error.length > 0) return refuse(name.error);
    config.header = name.value;
  }
  const query = doc.get("query");
  if (query !== null) {
    const param = queryName(query);
    if (param.error.length > 0) return refuse(param.error);
    config.query = param.value;
  }
  if (header === null && query === null) config.header = "x-api-key";

  const forward = doc.get("forwardNameHeader");
  if (forward !== null) {
    const name = headerName("forwardNameHeader", forward);
    if (name.error.length > 0) return refuse(name.error);
    config.forwardNameHeader = name.value;
  }
  if (config.forwardNameHeader == config.header) {
    return refuse("\"forwardNameHeader\" and \"header\" are both " + q(config.header) + ": the key name would replace the key");
  }
  const remove = doc.get("removeKey");
  if (remove !== null) {
    const flag = readBool("removeKey", remove);
    if (!flag.ok) return refuse(flag.error);
    config.removeKey = flag.value;
  }
  const shared = doc.get("sharedDataKey");
  if (shared !== null) {
    const key = text("sharedDataKey", shared);
    if (key.error.length > 0) return refuse(key.error);
    config.sharedDataKey = key.value;
  }
  return new Checked<ApiKeyConfig | null>(config, "");
}

/** A query parameter name: non-empty, and without the characters that delimit parameters. */
function queryName(v: JsonValue): Checked<string> {
  const name = text("query", v);
  if (name.error.length > 0) return name;
  const s = name.value;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x26 || c == 0x3d || c == 0x23 || c == 0x3f || c == 0x25 || c == 0x2b || c == 0x20) {
      return new Checked<string>("", "\"query\" must be a plain parameter name (no &, =, #, ?, %, + or space), got " + q(s));
    }
  }
  return name;
}
