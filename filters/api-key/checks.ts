/**
 * Checks shared by the filter's and the sync service's configurations, on top of the SDK's
 * configuration readers (../sdk/config.ts): header names and texts worded for this filter, each
 * failing with a message that names the offending entry.
 */
import { Checked, JsonValue, hasControlCharacter, isToken, quote, readNonEmptyString } from "../sdk/index";

// The SDK's readers under the names this filter's files use.
export { Checked, readConfigObject as loadObject, readInteger as integer, quote as q } from "../sdk/index";

/** The first key of `doc` not in `known`, or null. */
export function unknownKey(doc: JsonValue, known: string[]): string | null {
  const keys = doc.keys();
  for (let i = 0; i < keys.length; i++) if (!known.includes(keys[i])) return keys[i];
  return null;
}

/** An HTTP header name (a token, not a pseudo-header), lower-cased. */
export function headerName(path: string, v: JsonValue): Checked<string> {
  if (!v.isString()) return new Checked<string>("", quote(path) + " must be a header name (a string), got " + v.kindName());
  return headerNameText(path, v.asString());
}

/** The same check for a name given as text (an object key). */
export function headerNameText(path: string, name: string): Checked<string> {
  if (name.length == 0) return new Checked<string>("", quote(path) + " must not be empty");
  if (!isToken(name)) {
    return new Checked<string>("", quote(path) + " is not a valid header name: " + quote(name) + " (names are letters, digits and !#$%&'*+-.^_`|~)");
  }
  return new Checked<string>(name.toLowerCase(), "");
}

/** A non-empty string without control characters (it may end up in a header or a log line). */
export function text(path: string, v: JsonValue): Checked<string> {
  const s = readNonEmptyString(path, v);
  if (s.ok && hasControl(s.value)) return new Checked<string>("", quote(path) + " contains a control character");
  return s;
}

/** Control characters other than HTAB, which header values may hold. */
export function hasControl(s: string): bool {
  return hasControlCharacter(s, true);
}
