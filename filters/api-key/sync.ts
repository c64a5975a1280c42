/**
 * The key sync service (root id `api-key-sync`): a root context with no requests of its own. On a
 * timer it GETs the key list from a cluster, checks it, and publishes it in shared data, where
 * every api-key filter of the same vm_id picks it up. A failed or malformed answer is logged and
 * the last published list stays in force.
 */
import {
  Header, RootContext, Status, getHttpCallResponseBody, getHttpCallResponseHeader, getSharedData, getStatus, logCritical, logDebug,
  logInfo, logWarn, parseJson, setSharedData, statusName,
} from "../sdk/index";
import { q } from "./checks";
import { ApiKey, keyListJson, keyNames, readKeyList } from "./keys";
import { SyncConfig, parseSyncConfig } from "./sync-config";

/** The first fetch runs on the first tick, right after start (no callout may leave onConfigure). */
const FIRST_TICK_MS: u32 = 1;
/** Writers racing on the published key (several service instances) retry this many times. */
const CAS_ATTEMPTS = 4;

export class KeySyncRoot extends RootContext {
  config: SyncConfig = new SyncConfig();
  private started: bool = false;
  private inFlight: bool = false;

  onConfigure(size: usize): bool {
    const outcome = parseSyncConfig(this.getPluginConfiguration());
    if (outcome.value === null) {
      logCritical("api-key-sync: " + outcome.error);
      return false;
    }
    this.config = outcome.value!;
    this.setTickPeriodMilliseconds(FIRST_TICK_MS);
    return true;
  }

  onTick(): void {
    if (!this.started) {
      this.started = true;
      this.setTickPeriodMilliseconds(this.config.intervalMs);
    }
    // A slow key server must not pile calls up: the next one waits for this answer.
    if (this.inFlight) return;
    const c = this.config;
    const headers: Header[] = [
      new Header(":method", "GET"), new Header(":path", c.path), new Header(":authority", c.authority),
      new Header("accept", "application/json"),
    ];
    for (let i = 0; i < c.headers.length; i++) headers.push(c.headers[i]);
    const call = this.dispatchHttpCall(c.cluster, headers, null, [], c.timeoutMs);
    if (!call.ok) {
      logWarn("api-key-sync: cannot call cluster " + q(c.cluster) + ": " + statusName(call.status));
      return;
    }
    this.inFlight = true;
  }

  onHttpCallResponse(token: u32, numHeaders: u32, bodySize: usize, numTrailers: u32): void {
    this.inFlight = false;
    const from = "GET " + this.config.path + " on cluster " + q(this.config.cluster);
    if (numHeaders == 0) {
      logWarn("api-key-sync: " + from + " failed (" + getStatus().message + "); the published keys stay in force");
      return;
    }
    const status = getHttpCallResponseHeader(":status");
    if (status === null || status != "200") {
      logWarn("api-key-sync: " + from + " answered " + (status === null ? "no status" : status) + "; the published keys stay in force");
      return;
    }
    const keys = readAnswer(getHttpCallResponseBody(0, <u32>bodySize));
    if (keys.error.length > 0) {
      logWarn("api-key-sync: " + from + " answered " + keys.error + "; the published keys stay in force");
      return;
    }
    publish(this.config.sharedDataKey, keys.list!);
  }
}

class Answer {
  constructor(public list: ApiKey[] | null, public error: string) {}
}

/** `{"keys": [{"name", "sha256"}, …]}` (other top-level fields are ignored), or what is wrong. */
function readAnswer(body: ArrayBuffer | null): Answer {
  if (body === null || body.byteLength == 0) return new Answer(null, "an empty body");
  const parsed = parseJson(body);
  if (!parsed.ok) return new Answer(null, "invalid JSON (" + parsed.error!.toString() + ")");
  const doc = parsed.value!;
  const keys = doc.get("keys");
  if (!doc.isObject() || keys === null) return new Answer(null, "JSON without a \"keys\" list");
  const list = readKeyList("keys", keys);
  if (list.value === null) return new Answer(null, "a bad key list (" + list.error + ")");
  return new Answer(list.value, "");
}

/** Writes the list under `key` unless it is already there, with CAS so racing writers retry. */
function publish(key: string, keys: ApiKey[]): void {
  const bytes = String.UTF8.encode(keyListJson(keys));
  for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
    const current = getSharedData(key);
    // Rewriting the same list would change its CAS and make every filter re-read it.
    if (current.value !== null && sameBytes(current.value!, bytes)) {
      logDebug("api-key-sync: the key list is unchanged");
      return;
    }
    const status = setSharedData(key, bytes, current.cas);
    if (status == Status.Ok) {
      logInfo("api-key-sync: published " + keys.length.toString() + " keys (" + keyNames(keys) + ") under " + q(key));
      return;
    }
    if (status != Status.CasMismatch) {
      logWarn("api-key-sync: cannot publish the keys under " + q(key) + ": " + statusName(status));
      return;
    }
  }
  logWarn("api-key-sync: gave up publishing the keys under " + q(key) + " after " + CAS_ATTEMPTS.toString() + " CAS mismatches");
}

function sameBytes(a: ArrayBuffer, b: ArrayBuffer): bool {
  if (a.byteLength != b.byteLength) return false;
  return memory.compare(changetype<usize>(a), changetype<usize>(b), <usize>a.byteLength) == 0;
}
