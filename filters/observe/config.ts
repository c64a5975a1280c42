/**
 * The observe filter's configuration, validated once in `onConfigure`. Optional:
 *
 *   {"prefix": "observe"}
 *
 * `prefix` starts every metric name: dot-separated segments of letters, digits and `_`.
 */
import { checkKeys, isBlankConfiguration, readConfigObject } from "../sdk/index";

export const DEFAULT_PREFIX = "observe";

export class ObserveConfig {
  prefix: string = DEFAULT_PREFIX;
}

/** A configuration, or the reason it was refused. */
export class ConfigOutcome {
  constructor(public config: ObserveConfig | null, public error: string) {}
}

const EXAMPLE = "{\"prefix\":\"observe\"}";

function refuse(error: string): ConfigOutcome {
  return new ConfigOutcome(null, error);
}

export function parseObserveConfig(bytes: ArrayBuffer | null): ConfigOutcome {
  const config = new ObserveConfig();
  // No configuration (or only whitespace): the defaults.
  if (isBlankConfiguration(bytes)) return new ConfigOutcome(config, "");
  const loaded = readConfigObject(bytes, EXAMPLE);
  if (!loaded.ok) return refuse(loaded.error);
  const doc = loaded.value!;
  const unknown = checkKeys(doc, ["prefix"], "\"prefix\"");
  if (unknown.length > 0) return refuse(unknown);
  const prefix = doc.get("prefix");
  if (prefix !== null) {
    if (!prefix.isString()) return refuse("\"prefix\" must be a string such as \"observe\", got " + prefix.kindName());
    const text = prefix.asString();
    if (!isMetricPrefix(text)) {
      return refuse("\"prefix\" must be dot-separated names of letters, digits and _ (such as \"observe\" or \"edge.observe\"), got \""
        + text + "\"");
    }
    config.prefix = text;
  }
  return new ConfigOutcome(config, "");
}

/** Non-empty segments of [A-Za-z0-9_] separated by single dots, at most 128 characters. */
function isMetricPrefix(s: string): bool {
  if (s.length == 0 || s.length > 128) return false;
  let segment = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x2e) {
      if (segment == 0) return false;
      segment = 0;
    } else if (isWordChar(c)) {
      segment++;
    } else {
      return false;
    }
  }
  return segment > 0;
}

export function isWordChar(c: i32): bool {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f;
}
