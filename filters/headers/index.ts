/**
 * headers: adds, sets, removes and renames request and response headers from its JSON
 * configuration (see README.md). Built with the SDK in ../sdk.
 */
import { Action, HttpContext, MapType, RootContext, addHeaderMapValue, getHeaderMapPairs, getHeaderMapValue, logCritical, registerRootContext,
  removeHeaderMapValue, replaceHeaderMapValue } from "../sdk/index";
import { HeadersConfig, Rules, parseHeadersConfig } from "./config";

// The callbacks this filter handles (filters/README.md, "Callbacks").
export * from "../sdk/callbacks/lifecycle";
export * from "../sdk/callbacks/request-headers";
export * from "../sdk/callbacks/response-headers";

class HeadersRoot extends RootContext {
  config: HeadersConfig = new HeadersConfig();

  onConfigure(size: usize): bool {
    const outcome = parseHeadersConfig(this.getPluginConfiguration());
    if (outcome.config === null) {
      logCritical("headers: " + outcome.error);
      return false;
    }
    this.config = outcome.config!;
    return true;
  }

  createHttpContext(contextId: u32): HttpContext {
    return new HeadersStream(contextId, this, this.config);
  }
}

class HeadersStream extends HttpContext {
  constructor(contextId: u32, root: RootContext, private config: HeadersConfig) {
    super(contextId, root);
  }

  onRequestHeaders(numHeaders: u32, endOfStream: bool): Action {
    apply(MapType.HttpRequestHeaders, this.config.request);
    return Action.Continue;
  }

  onResponseHeaders(numHeaders: u32, endOfStream: bool): Action {
    apply(MapType.HttpResponseHeaders, this.config.response);
    return Action.Continue;
  }
}

/** Applies the rules in order: rename, remove, set, add. */
function apply(map: MapType, rules: Rules): void {
  for (let i = 0; i < rules.toRename.length; i++) rename(map, rules.toRename[i].name, rules.toRename[i].value);
  for (let i = 0; i < rules.toRemove.length; i++) removeHeaderMapValue(map, rules.toRemove[i]);
  for (let i = 0; i < rules.toSet.length; i++) replaceHeaderMapValue(map, rules.toSet[i].name, rules.toSet[i].value);
  for (let i = 0; i < rules.toAdd.length; i++) addHeaderMapValue(map, rules.toAdd[i].name, rules.toAdd[i].value);
}

/** Moves every value of `from` to `to`, replacing the values `to` had; nothing when `from` is absent. */
function rename(map: MapType, from: string, to: string): void {
  // Most requests lack the header: one lookup is far cheaper than decoding the whole map.
  if (getHeaderMapValue(map, from) === null) return;
  const pairs = getHeaderMapPairs(map);
  const values = new Array<string>();
  for (let i = 0; i < pairs.length; i++) if (pairs[i].name == from) values.push(pairs[i].value);
  if (values.length == 0) return;
  removeHeaderMapValue(map, from);
  removeHeaderMapValue(map, to);
  for (let i = 0; i < values.length; i++) addHeaderMapValue(map, to, values[i]);
}

registerRootContext((contextId: u32): RootContext => new HeadersRoot(contextId), "headers");
