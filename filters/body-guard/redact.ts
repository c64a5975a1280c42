/**
 * Redaction of a whole body: one pass from the start, character by character; at each position
 * the patterns are tried in configuration order and the first that matches is replaced by its
 * replacement, the scan going on after the match (matches never overlap, replacements are never
 * scanned again).
 */
import { Pattern, charLength, matchAt } from "./pattern";

/** The body with every match replaced, or null when nothing matched (the body stays as it is). */
export function redact(body: ArrayBuffer, patterns: Pattern[]): ArrayBuffer | null {
  const base = changetype<usize>(body);
  const end = base + <usize>body.byteLength;
  // Matches as (start, end, pattern) offsets; allocated only once something matches.
  let found: i32[] | null = null;
  let outLength: i32 = body.byteLength;
  let p = base;
  while (p < end) {
    let matched: usize = 0;
    let which = 0;
    for (; which < patterns.length; which++) {
      matched = matchAt(unchecked(patterns[which]).elements, p, end);
      if (matched != 0) break;
    }
    if (matched == 0) {
      // Whole characters only, so that a match never starts inside a UTF-8 sequence.
      p += charLength(p, end);
      continue;
    }
    if (found === null) found = new Array<i32>();
    found!.push(<i32>(p - base));
    found!.push(<i32>(matched - base));
    found!.push(which);
    outLength += unchecked(patterns[which]).replacement.byteLength - <i32>(matched - p);
    p = matched;
  }
  if (found === null) return null;
  const out = new ArrayBuffer(outLength);
  const dst = changetype<usize>(out);
  let from = 0;
  let to = 0;
  const list = found!;
  for (let k = 0; k < list.length; k += 3) {
    const start = unchecked(list[k]);
    const stop = unchecked(list[k + 1]);
    const replacement = unchecked(patterns[unchecked(list[k + 2])]).replacement;
    memory.copy(dst + to, base + from, start - from);
    to += start - from;
    memory.copy(dst + to, changetype<usize>(replacement), replacement.byteLength);
    to += replacement.byteLength;
    from = stop;
  }
  memory.copy(dst + to, base + from, body.byteLength - from);
  return out;
}
