/**
 * The ext-authz filter's configuration, checked once in `onConfigure`:
 *
 *   {"cluster": "authz", "path": "/check", "timeoutMs": 500, "headers": ["authorization", "x-user"],
 *    "forwardHeaders": ["x-auth-user"], "onTimeout": "deny", "onError": "deny", "includePath": true}
 *
 * `cluster` and `path` are required; the rest have defaults (README.md). Every problem is reported
 * with the key (and index) at fault.
 */
import {
  JsonValue, checkToken, describeValue, itemPath, quote as q, readBool, readConfigObject, readInteger, readStringArray, unknownKeyError,
} from "../sdk/index";

/** What to do when the authorization service cannot give an answer. */
export enum Policy {
  Deny = 0,
  Allow = 1,
}

export function policyName(policy: Policy): string {
  return policy == Policy.Allow ? "allow" : "deny";
}

export const ORIGINAL_PATH = "x-original-path";
export const ORIGINAL_METHOD = "x-original-method";

const DEFAULT_TIMEOUT_MS: u32 = 500;
/** Longer than this and the request would sit paused beyond any sensible route timeout. */
const MAX_TIMEOUT_MS: u32 = 60000;

export class AuthzConfig {
  cluster: string = "";
  path: string = "";
  timeoutMs: u32 = DEFAULT_TIMEOUT_MS;
  /** Request headers copied to the check request (lower-cased). */
  headers: string[] = [];
  /** Headers of a 2xx answer copied onto the upstream request (lower-cased). */
  forwardHeaders: string[] = [];
  onTimeout: Policy = Policy.Deny;
  onError: Policy = Policy.Deny;
  includePath: bool = false;

  copies(lowerName: string): bool {
    for (let i = 0; i < this.headers.length; i++) if (unchecked(this.headers[i]) == lowerName) return true;
    return false;
  }

  forwards(lowerName: string): bool {
    for (let i = 0; i < this.forwardHeaders.length; i++) if (unchecked(this.forwardHeaders[i]) == lowerName) return true;
    return false;
  }
}

/** A configuration, or the reason it was refused. */
export class ConfigOutcome {
  constructor(public config: AuthzConfig | null, public error: string) {}
}

const EXAMPLE = "{\"cluster\":\"authz\",\"path\":\"/check\"}";
const KEYS = "cluster, path, timeoutMs, headers, forwardHeaders, onTimeout, onError or includePath";

function refuse(error: string): ConfigOutcome {
  return new ConfigOutcome(null, error);
}

export function parseAuthzConfig(bytes: ArrayBuffer | null): ConfigOutcome {
  const loaded = readConfigObject(bytes, EXAMPLE);
  if (!loaded.ok) return refuse(loaded.error);
  const doc = loaded.value!;
  const config = new AuthzConfig();
  const keys = doc.keys();
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    const value = doc.get(key)!;
    let error = "";
    if (key == "cluster") error = readCluster(value, config);
    else if (key == "path") error = readPath(value, config);
    else if (key == "timeoutMs") error = readTimeout(value, config);
    else if (key == "headers") error = readNames(key, value, config.headers);
    else if (key == "forwardHeaders") error = readNames(key, value, config.forwardHeaders);
    else if (key == "onTimeout" || key == "onError") error = readPolicy(key, value, config);
    else if (key == "includePath") {
      const flag = readBool(key, value);
      error = flag.error;
      config.includePath = flag.value;
    } else error = unknownKeyError(key, KEYS);
    if (error.length > 0) return refuse(error);
  }
  if (config.cluster.length == 0) return refuse("\"cluster\" is required: the cluster of the authorization service, as in " + EXAMPLE);
  if (config.path.length == 0) return refuse("\"path\" is required: the path of the check request, as in " + EXAMPLE);
  if (config.includePath && (config.copies(ORIGINAL_PATH) || config.copies(ORIGINAL_METHOD))) {
    return refuse("\"headers\" cannot copy " + q(ORIGINAL_PATH) + " or " + q(ORIGINAL_METHOD) + " when \"includePath\" is true: the filter sets them");
  }
  return new ConfigOutcome(config, "");
}

function readCluster(value: JsonValue, config: AuthzConfig): string {
  if (!value.isString() || value.asString().length == 0) return "\"cluster\" must be a non-empty string, got " + describeValue(value);
  config.cluster = value.asString();
  return "";
}

function readPath(value: JsonValue, config: AuthzConfig): string {
  if (!value.isString()) return "\"path\" must be a string starting with \"/\", got " + value.kindName();
  const path = value.asString();
  if (!path.startsWith("/")) return "\"path\" must start with \"/\", got " + q(path);
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c <= 0x20 || c == 0x7f || c == 0x23) return "\"path\" has a space, a control character or \"#\": " + q(path);
  }
  config.path = path;
  return "";
}

function readTimeout(value: JsonValue, config: AuthzConfig): string {
  const ms = readInteger("timeoutMs", value, 1, MAX_TIMEOUT_MS, "a whole number of milliseconds");
  if (ms.ok) config.timeoutMs = <u32>ms.value;
  return ms.error;
}

function readPolicy(key: string, value: JsonValue, config: AuthzConfig): string {
  const text = value.isString() ? value.asString() : "";
  let policy: Policy;
  if (text == "deny") policy = Policy.Deny;
  else if (text == "allow") policy = Policy.Allow;
  else return q(key) + " must be \"deny\" or \"allow\", got " + describeValue(value);
  if (key == "onTimeout") config.onTimeout = policy;
  else config.onError = policy;
  return "";
}

/** A list of distinct header names, lower-cased into `out`. */
function readNames(key: string, value: JsonValue, out: string[]): string {
  const list = readStringArray(key, value, "an array of header names", "a header name (a string)");
  if (!list.ok) return list.error;
  const names = list.value!;
  for (let i = 0; i < names.length; i++) {
    const name = names[i].toLowerCase();
    const error = checkName(itemPath(key, i), name);
    if (error.length > 0) return error;
    for (let j = 0; j < out.length; j++) if (out[j] == name) return q(key) + " lists " + q(name) + " twice";
    out.push(name);
  }
  return "";
}

/** An HTTP token that is neither a pseudo-header nor one the host derives itself. */
function checkName(path: string, name: string): string {
  if (name.length == 0) return q(path) + " is an empty header name";
  if (name.charCodeAt(0) == 0x3a) return q(path) + " cannot be the pseudo-header " + q(name);
  const invalid = checkToken(path, name, "header name");
  if (invalid.length > 0) return invalid;
  if (name == "host" || name == "content-length" || name == "transfer-encoding") {
    return q(path) + " cannot be " + q(name) + ": the proxy sets it on each message";
  }
  return "";
}
