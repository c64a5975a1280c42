/**
 * The redaction pattern language (AssemblyScript has no RegExp). A pattern matches a fixed number
 * of characters; each character of the pattern is one of:
 *
 *   #      one ASCII digit, 0-9
 *   @      one ASCII letter, A-Z or a-z
 *   ?      any one character (a whole UTF-8 sequence; a byte that is not valid UTF-8 counts as one)
 *   \c     the character c itself (\#, \@, \?, \\, \{)
 *   {n}    after any of the above: that element n times in all (1 ≤ n ≤ 256), so #{4} is ####
 *   other  itself, exactly (case-sensitive; compared as UTF-8 bytes)
 *
 * There is no alternation, no optional part and no variable-length repetition, so matching needs
 * no backtracking: one pass over the body, trying each pattern at each character.
 */

/** Element codes: a literal byte is 0-255; the classes are negative. */
const DIGIT: i32 = -1;
const LETTER: i32 = -2;
const ANY: i32 = -3;

export const MAX_REPEAT: i32 = 256;
/** Elements per pattern after `{n}` expansion. */
export const MAX_ELEMENTS: i32 = 4096;

export class Pattern {
  constructor(public source: string, public elements: StaticArray<i32>, public replacement: ArrayBuffer) {}
}

/** A compiled pattern, or why the source is not one. */
export class PatternOutcome {
  constructor(public elements: StaticArray<i32> | null, public error: string) {}
}

function refuse(error: string): PatternOutcome {
  return new PatternOutcome(null, error);
}

/** Compiles `source`; errors name the character (counted from 1) where the problem is. */
export function compilePattern(source: string): PatternOutcome {
  if (source.length == 0) return refuse("is empty");
  const out = new Array<i32>();
  // The elements of the last pattern character, for {n}: [lastFrom, out.length).
  let lastFrom = -1;
  let i = 0;
  while (i < source.length) {
    const at = "at character " + (i + 1).toString();
    const c = source.charCodeAt(i);
    if (c == 0x7b) { // {
      if (lastFrom < 0) return refuse("has \"{\" " + at + " with nothing before it to repeat (write \\{ for a literal {)");
      let n = 0;
      let j = i + 1;
      while (j < source.length && isDigit(source.charCodeAt(j))) {
        n = min(n * 10 + (source.charCodeAt(j++) - 0x30), MAX_REPEAT + 1);
      }
      if (j == i + 1 || j >= source.length || source.charCodeAt(j) != 0x7d) {
        return refuse("has \"{\" " + at + " that is not a repetition {n} (write \\{ for a literal {)");
      }
      if (n < 1 || n > MAX_REPEAT) {
        return refuse("has the repetition " + source.substring(i, j + 1) + " " + at + " (from {1} to {" + MAX_REPEAT.toString() + "})");
      }
      const to = out.length;
      for (let k = 1; k < n; k++) for (let e = lastFrom; e < to; e++) out.push(out[e]);
      lastFrom = -1; // {n}{m} is refused
      i = j + 1;
    } else {
      lastFrom = out.length;
      if (c == 0x23) out.push(DIGIT);
      else if (c == 0x40) out.push(LETTER);
      else if (c == 0x3f) out.push(ANY);
      else {
        let start = i;
        if (c == 0x5c) {
          if (i + 1 >= source.length) return refuse("ends with \"\\\" " + at + " (write \\\\ for a literal \\)");
          start = ++i;
        }
        // One character (a surrogate pair when astral), as its UTF-8 bytes.
        const hi = source.charCodeAt(start);
        const len = hi >= 0xd800 && hi < 0xdc00 && start + 1 < source.length ? 2 : 1;
        const bytes = Uint8Array.wrap(String.UTF8.encode(source.substring(start, start + len)));
        for (let b = 0; b < bytes.length; b++) out.push(<i32>bytes[b]);
        i = start + len - 1;
      }
      i++;
    }
    if (out.length > MAX_ELEMENTS) return refuse("is longer than " + MAX_ELEMENTS.toString() + " characters once repetitions are expanded");
  }
  const elements = new StaticArray<i32>(out.length);
  for (let k = 0; k < out.length; k++) elements[k] = out[k];
  return new PatternOutcome(elements, "");
}

/** Bytes of the UTF-8 sequence starting at `p` (1 for a byte that does not start a valid one). */
export function charLength(p: usize, end: usize): usize {
  const b = load<u8>(p);
  let n: usize = 1;
  if (b >= 0xc2 && b <= 0xdf) n = 2;
  else if (b >= 0xe0 && b <= 0xef) n = 3;
  else if (b >= 0xf0 && b <= 0xf4) n = 4;
  if (p + n > end) return 1;
  for (let k: usize = 1; k < n; k++) if ((load<u8>(p + k) & 0xc0) != 0x80) return 1;
  return n;
}

/** Where a match of `elements` starting at `p` ends, or 0 when there is none. */
export function matchAt(elements: StaticArray<i32>, p: usize, end: usize): usize {
  let at = p;
  for (let e = 0; e < elements.length; e++) {
    if (at >= end) return 0;
    const want = unchecked(elements[e]);
    const b = <i32>load<u8>(at);
    if (want >= 0) {
      if (b != want) return 0;
      at++;
    } else if (want == DIGIT) {
      if (!isDigit(b)) return 0;
      at++;
    } else if (want == LETTER) {
      if (!((b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a))) return 0;
      at++;
    } else {
      at += charLength(at, end);
    }
  }
  return at;
}

function isDigit(c: i32): bool {
  return c >= 0x30 && c <= 0x39;
}
