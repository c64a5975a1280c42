/**
 * The headers filter's configuration, validated once in `onConfigure`:
 *
 *   {"request":  {"rename": {"x-old": "x-new"}, "remove": ["x-b"], "set": {"x-c": "1"}, "add": {"x-a": ["1", "2"]}},
 *    "response": {...same operations...}}
 *
 * Every problem is reported with the path of the offending entry, e.g. `"request.set.x-a" must be
 * a string, a number or a boolean, got an object`.
 */
import {
  Checked, Header, JsonValue, checkToken, hasControlCharacter, itemPath, quote as q, readConfigObject, readStringArray, unknownKeyError,
} from "../sdk/index";

/** The operations for one direction, in the order they are applied. */
export class Rules {
  toRename: Header[] = [];
  toRemove: string[] = [];
  toSet: Header[] = [];
  toAdd: Header[] = [];
  get empty(): bool {
    return this.toRename.length + this.toRemove.length + this.toSet.length + this.toAdd.length == 0;
  }
}

export class HeadersConfig {
  request: Rules = new Rules();
  response: Rules = new Rules();
}

/** A configuration, or the reason it was refused. */
export class ConfigOutcome {
  constructor(public config: HeadersConfig | null, public error: string) {}
}

const EXAMPLE = "{\"request\":{\"set\":{\"x-a\":\"1\"}}}";

function refuse(error: string): ConfigOutcome {
  return new ConfigOutcome(null, error);
}

export function parseHeadersConfig(bytes: ArrayBuffer | null): ConfigOutcome {
  const loaded = readConfigObject(bytes, EXAMPLE);
  if (!loaded.ok) return refuse(loaded.error);
  const doc = loaded.value!;
  const config = new HeadersConfig();
  const keys = doc.keys();
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    let rules: Rules;
    if (key == "request") rules = config.request;
    else if (key == "response") rules = config.response;
    else return refuse(unknownKeyError(key, "\"request\" or \"response\""));
    const error = readRules(key, doc.get(key)!, rules);
    if (error.length > 0) return refuse(error);
  }
  if (config.request.empty && config.response.empty) {
    return refuse("configuration changes no header; expected a JSON object such as " + EXAMPLE);
  }
  return new ConfigOutcome(config, "");
}

function readRules(direction: string, section: JsonValue, rules: Rules): string {
  if (!section.isObject()) return q(direction) + " must be an object, got " + section.kindName();
  const ops = section.keys();
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    const path = direction + "." + op;
    const value = section.get(op)!;
    let error = "";
    if (op == "add") error = readAdd(path, value, rules.toAdd);
    else if (op == "set") error = readSet(path, value, rules.toSet);
    else if (op == "remove") error = readRemove(path, value, rules.toRemove);
    else if (op == "rename") error = readRename(path, value, rules.toRename);
    else error = "unknown operation " + q(path) + " (expected add, set, remove or rename)";
    if (error.length > 0) return error;
  }
  return "";
}

function readAdd(path: string, value: JsonValue, out: Header[]): string {
  if (!value.isObject()) return q(path) + " must be an object of header names to values, got " + value.kindName();
  const names = value.keys();
  for (let i = 0; i < names.length; i++) {
    const entry = path + "." + names[i];
    const name = checkName(path, names[i]);
    if (name.error.length > 0) return name.error;
    const v = value.get(names[i])!;
    if (v.isArray()) {
      for (let j = 0; j < v.length; j++) {
        const item = scalar(itemPath(entry, j), v.at(j)!);
        if (item.error.length > 0) return item.error;
        out.push(new Header(name.value, item.value));
      }
    } else {
      const item = scalar(entry, v);
      if (item.error.length > 0) return item.error + " or an array of them";
      out.push(new Header(name.value, item.value));
    }
  }
  return "";
}

function readSet(path: string, value: JsonValue, out: Header[]): string {
  if (!value.isObject()) return q(path) + " must be an object of header names to values, got " + value.kindName();
  const names = value.keys();
  for (let i = 0; i < names.length; i++) {
    const name = checkName(path, names[i]);
    if (name.error.length > 0) return name.error;
    const item = scalar(path + "." + names[i], value.get(names[i])!);
    if (item.error.length > 0) return item.error;
    out.push(new Header(name.value, item.value));
  }
  return "";
}

function readRemove(path: string, value: JsonValue, out: string[]): string {
  const list = readStringArray(path, value, "an array of header names", "a header name (a string)");
  if (!list.ok) return list.error;
  const names = list.value!;
  for (let i = 0; i < names.length; i++) {
    const name = checkName(path, names[i]);
    if (name.error.length > 0) return name.error;
    out.push(name.value);
  }
  return "";
}

function readRename(path: string, value: JsonValue, out: Header[]): string {
  if (!value.isObject()) return q(path) + " must be an object of old names to new names, got " + value.kindName();
  const names = value.keys();
  for (let i = 0; i < names.length; i++) {
    const entry = path + "." + names[i];
    const from = checkName(path, names[i]);
    if (from.error.length > 0) return from.error;
    const target = value.get(names[i])!;
    if (!target.isString()) return q(entry) + " must be the new header name (a string), got " + target.kindName();
    const to = checkName(path, target.asString());
    if (to.error.length > 0) return to.error;
    if (to.value == from.value) return q(entry) + " renames a header to itself";
    out.push(new Header(from.value, to.value));
  }
  return "";
}

/** A header value from a string, number (as written) or boolean. */
function scalar(path: string, v: JsonValue): Checked<string> {
  let text: string;
  if (v.isString()) text = v.asString();
  else if (v.isNumber()) text = v.numberText();
  else if (v.isBool()) text = v.asBool() ? "true" : "false";
  else return new Checked<string>("", q(path) + " must be a string, a number or a boolean, got " + v.kindName());
  if (hasControlCharacter(text, true)) {
    return new Checked<string>("", "the value of " + q(path) + " contains a control character (line breaks and NUL are not allowed in headers)");
  }
  return new Checked<string>(text, "");
}

/** A header name: an HTTP token, lower-cased; not a pseudo-header and not a framing header. */
function checkName(path: string, name: string): Checked<string> {
  if (name.length == 0) return new Checked<string>("", q(path) + " has an empty header name");
  if (name.charCodeAt(0) == 0x3a) return new Checked<string>("", q(path) + " cannot change the pseudo-header " + q(name));
  const invalid = checkToken(path, name, "header name");
  if (invalid.length > 0) return new Checked<string>("", invalid);
  const lower = name.toLowerCase();
  if (lower == "content-length" || lower == "transfer-encoding") {
    return new Checked<string>("", q(path) + " cannot change " + q(lower) + ": it controls message framing");
  }
  return new Checked<string>(lower, "");
}
