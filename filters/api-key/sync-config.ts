/**
 * The key sync service's configuration (root id `api-key-sync`), checked once in `onConfigure`:
 *
 *   {"cluster": "key-server", "path": "/keys", "authority": "keys.internal", "intervalMs": 30000,
 *    "timeoutMs": 5000, "headers": {"authorization": "Bearer …"}, "sharedDataKey": "api-key/keys/v1"}
 *
 * `cluster` and `path` are required.
 */
import { Header } from "../sdk/index";
import { Checked, headerNameText, integer, loadObject, q, text, unknownKey } from "./checks";
import { DEFAULT_SHARED_DATA_KEY } from "./config";

export class SyncConfig {
  cluster: string = "";
  path: string = "";
  /** `:authority` of the call; the cluster name when not configured. */
  authority: string = "";
  intervalMs: u32 = 60000;
  timeoutMs: u32 = 5000;
  headers: Header[] = [];
  sharedDataKey: string = DEFAULT_SHARED_DATA_KEY;
}

const EXAMPLE = "{\"cluster\":\"key-server\",\"path\":\"/keys\",\"intervalMs\":30000}";
const KNOWN = ["cluster", "path", "authority", "intervalMs", "timeoutMs", "headers", "sharedDataKey"];

function refuse(error: string): Checked<SyncConfig | null> {
  return new Checked<SyncConfig | null>(null, error);
}

export function parseSyncConfig(bytes: ArrayBuffer | null): Checked<SyncConfig | null> {
  const loaded = loadObject(bytes, EXAMPLE);
  if (loaded.value === null) return refuse(loaded.error);
  const doc = loaded.value!;
  const unknown = unknownKey(doc, KNOWN);
  if (unknown !== null) return refuse("unknown key " + q(unknown) + " (expected " + KNOWN.join(", ") + ")");
  const config = new SyncConfig();

  const cluster = doc.get("cluster");
  if (cluster === null) return refuse("\"cluster\" is required: the cluster that serves the keys, as in " + EXAMPLE);
  const clusterName = text("cluster", cluster);
  if (clusterName.error.length > 0) return refuse(clusterName.error);
  config.cluster = clusterName.value;
  config.authority = clusterName.value;

  const path = doc.get("path");
  if (path === null) return refuse("\"path\" is required: the path of the key list on the cluster, as in " + EXAMPLE);
  const pathText = text("path", path);
  if (pathText.error.length > 0) return refuse(pathText.error);
  if (!pathText.value.startsWith("/")) return refuse("\"path\" must start with \"/\", got " + q(pathText.value));
  config.path = pathText.value;

  const authority = doc.get("authority");
  if (authority !== null) {
    const a = text("authority", authority);
    if (a.error.length > 0) return refuse(a.error);
    config.authority = a.value;
  }
  const interval = doc.get("intervalMs");
  if (interval !== null) {
    const n = integer("intervalMs", interval, 10, 86400000);
    if (n.error.length > 0) return refuse(n.error);
    config.intervalMs = <u32>n.value;
  }
  const timeout = doc.get("timeoutMs");
  if (timeout !== null) {
    const n = integer("timeoutMs", timeout, 1, 600000);
    if (n.error.length > 0) return refuse(n.error);
    config.timeoutMs = <u32>n.value;
  }
  const headers = doc.get("headers");
  if (headers !== null) {
    if (!headers.isObject()) return refuse("\"headers\" must be an object of header names to values, got " + headers.kindName());
    const names = headers.keys();
    for (let i = 0; i < names.length; i++) {
      const path = "headers." + names[i];
      const name = headerNameText(path, names[i]);
      if (name.error.length > 0) return refuse(name.error);
      const value = text(path, headers.get(names[i])!);
      if (value.error.length > 0) return refuse(value.error);
      config.headers.push(new Header(name.value, value.value));
    }
  }
  const shared = doc.get("sharedDataKey");
  if (shared !== null) {
    const key = text("sharedDataKey", shared);
    if (key.error.length > 0) return refuse(key.error);
    config.sharedDataKey = key.value;
  }
  return new Checked<SyncConfig | null>(config, "");
}
