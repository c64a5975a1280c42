/**
 * api-key: admits requests that present a known API key (header or query parameter), forwards the
 * key's name upstream and answers 401 with a JSON body otherwise (see README.md). Keys are
 * configured as SHA-256 digests; the sync service in sync.ts (root id `api-key-sync`) can replace
 * them at run time through shared data.
 */
import {
  Action, Header, HttpContext, RootContext, getSharedData, logCritical, logWarn, parseJson, registerRootContext,
} from "../sdk/index";
import { sha256 } from "../sdk/crypto/index";
import { ApiKeyConfig, parseApiKeyConfig } from "./config";
import { queryValue, withoutQueryParam } from "./credentials";
import { ApiKey, findKey, readKeyList } from "./keys";
import { KeySyncRoot } from "./sync";

// The callbacks this filter handles (filters/README.md, "Callbacks").
export * from "../sdk/callbacks/lifecycle";
export * from "../sdk/callbacks/request-headers";
export * from "../sdk/callbacks/timers";
export * from "../sdk/callbacks/callouts";

const MISSING = "{\"error\":\"unauthorized\",\"message\":\"missing API key\"}";
const INVALID = "{\"error\":\"unauthorized\",\"message\":\"invalid API key\"}";

class ApiKeyRoot extends RootContext {
  config: ApiKeyConfig = new ApiKeyConfig();
  /** The list last read from shared data, and the CAS it was read at (0: none read yet). */
  private publishedCas: u32 = 0;
  private published: ApiKey[] | null = null;

  onConfigure(size: usize): bool {
    const outcome = parseApiKeyConfig(this.getPluginConfiguration());
    if (outcome.value === null) {
      logCritical("api-key: " + outcome.error);
      return false;
    }
    this.config = outcome.value!;
    return true;
  }

  createHttpContext(contextId: u32): HttpContext {
    return new ApiKeyStream(contextId, this);
  }

  /**
   * The keys in force: the list the sync service published, else the configured ones. The
   * published text is parsed only when its CAS changes, so a request costs one shared-data read.
   */
  keys(): ApiKey[] {
    const data = getSharedData(this.config.sharedDataKey);
    if (data.value === null || data.value!.byteLength == 0) return this.config.keys;
    if (data.cas != this.publishedCas) {
      this.publishedCas = data.cas;
      this.published = readPublished(data.value!, this.config.sharedDataKey);
    }
    return this.published !== null ? this.published! : this.config.keys;
  }
}

/** A published list, or null (logged) when it cannot be used. */
function readPublished(bytes: ArrayBuffer, key: string): ApiKey[] | null {
  const parsed = parseJson(bytes);
  const list = parsed.ok ? parsed.value!.get("keys") : null;
  if (list !== null) {
    const keys = readKeyList("keys", list);
    if (keys.value !== null) return keys.value;
    logWarn("api-key: the key list in shared data \"" + key + "\" is not usable (" + keys.error + "); using the configured keys");
    return null;
  }
  logWarn("api-key: the key list in shared data \"" + key + "\" is not {\"keys\": […]}; using the configured keys");
  return null;
}

class ApiKeyStream extends HttpContext {
  constructor(contextId: u32, private filter: ApiKeyRoot) {
    super(contextId, filter);
  }

  onRequestHeaders(numHeaders: u32, endOfStream: bool): Action {
    const config = this.filter.config;
    // The header first, then the query parameter: the first one present is the key presented.
    let presented: Uint8Array | null = null;
    let path: string | null = null;
    if (config.header.length > 0) {
      const value = this.getHttpRequestHeader(config.header);
      if (value !== null && value.length > 0) presented = Uint8Array.wrap(String.UTF8.encode(value));
    }
    if (config.query.length > 0) {
      path = this.getHttpRequestHeader(":path");
      if (presented === null && path !== null) {
        const value = queryValue(path, config.query);
        if (value !== null && value.length > 0) presented = value;
      }
    }
    if (presented === null) return this.reject(MISSING, "api_key_missing");
    const key = findKey(this.filter.keys(), sha256(presented));
    if (key === null) return this.reject(INVALID, "api_key_invalid");

    // Replaced, never added: a client cannot choose the name upstream sees.
    this.setHttpRequestHeader(config.forwardNameHeader, key.name);
    if (config.removeKey) {
      if (config.header.length > 0) this.removeHttpRequestHeader(config.header);
      if (path !== null) {
        const stripped = withoutQueryParam(path, config.query);
        if (stripped != path) this.setHttpRequestHeader(":path", stripped);
      }
    }
    return Action.Continue;
  }

  private reject(body: string, details: string): Action {
    this.sendHttpResponseString(401, [new Header("content-type", "application/json"), new Header("cache-control", "no-store")], body, details);
    return Action.Pause;
  }
}

registerRootContext((contextId: u32): RootContext => new ApiKeyRoot(contextId), "api-key");
// The default root id ("") is the filter too, so `rootId` may be left out for it.
registerRootContext((contextId: u32): RootContext => new ApiKeyRoot(contextId), "");
registerRootContext((contextId: u32): RootContext => new KeySyncRoot(contextId), "api-key-sync");
