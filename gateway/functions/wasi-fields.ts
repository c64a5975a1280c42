/**
 * wasi:http's `fields` (headers and trailers) and the conversions between the guest's forms and
 * the gateway's (flat latin1 [name, value…] lists). Everything a guest hands over is checked here:
 * names must be HTTP tokens, values must hold no CR, LF or NUL, hop-by-hop fields are forbidden
 * (the gateway owns framing); a bad one gets the WIT's `invalid-syntax` or `forbidden`.
 */
export type Variant = { tag: string; val?: unknown };
export type Entry = [string, Uint8Array];

export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
export const BAD_VALUE = /[\0\r\n]/;
/** Hop-by-hop fields: the gateway frames both sides itself (RFC 9110 §7.6.1). */
const FORBIDDEN = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings', 'host']);
const METHODS = new Set(['get', 'head', 'post', 'put', 'delete', 'connect', 'options', 'trace', 'patch']);
export const latin1 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
const bytesOf = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'latin1'));

/** A result<_, E> error as jco reads it (its payload, not an Error). */
export function refused(payload: unknown): { payload: unknown } {
  return { payload };
}

export function checkName(name: string): string {
  if (!TOKEN.test(name)) throw { tag: 'invalid-syntax' };
  const lower = name.toLowerCase();
  if (FORBIDDEN.has(lower)) throw { tag: 'forbidden' };
  return lower;
}

export function checkValue(value: Uint8Array): Uint8Array {
  if (BAD_VALUE.test(latin1(value))) throw { tag: 'invalid-syntax' };
  return value;
}

export function methodOf(name: string): Variant {
  const lower = name.toLowerCase();
  return METHODS.has(lower) && name === name.toUpperCase() ? { tag: lower } : { tag: 'other', val: name };
}

export function methodName(method: Variant): string {
  if (method.tag === 'other') {
    const name = String(method.val);
    if (!TOKEN.test(name)) throw refused(undefined);
    return name;
  }
  return method.tag.toUpperCase();
}

export function schemeOf(name: string): Variant {
  return name === 'http' ? { tag: 'HTTP' } : name === 'https' ? { tag: 'HTTPS' } : { tag: 'other', val: name };
}

export function schemeName(scheme: Variant | undefined): string {
  if (scheme === undefined || scheme.tag === 'HTTP') return 'http';
  if (scheme.tag === 'HTTPS') return 'https';
  return String(scheme.val);
}

/** Flat [name, value…] strings from fields entries, and back. */
export function flatOf(entries: readonly Entry[]): string[] {
  const out: string[] = [];
  for (const [name, value] of entries) out.push(name, latin1(value));
  return out;
}

export function entriesOf(flat: readonly string[]): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!.toLowerCase(), bytesOf(flat[i + 1]!)]);
  return out;
}

export class Fields {
  /** @internal */ entries_: Entry[] = [];
  /** @internal */ immutable = false;

  static fromList(entries: Entry[]): Fields {
    const f = new Fields();
    for (const [name, value] of entries) f.entries_.push([checkName(name), checkValue(value)]);
    return f;
  }

  /** @internal A guarded view (request and response heads the guest may only read). */
  static frozen(entries: Entry[]): Fields {
    const f = new Fields();
    f.entries_ = entries;
    f.immutable = true;
    return f;
  }

  get(name: string): Uint8Array[] {
    const lower = name.toLowerCase();
    return this.entries_.filter(([n]) => n === lower).map(([, v]) => v);
  }

  has(name: string): boolean {
    const lower = name.toLowerCase();
    return this.entries_.some(([n]) => n === lower);
  }

  set(name: string, values: Uint8Array[]): void {
    this.mutable();
    const lower = checkName(name);
    values.forEach(checkValue);
    this.entries_ = this.entries_.filter(([n]) => n !== lower);
    for (const v of values) this.entries_.push([lower, v]);
  }

  delete(name: string): void {
    this.mutable();
    const lower = checkName(name);
    this.entries_ = this.entries_.filter(([n]) => n !== lower);
  }

  append(name: string, value: Uint8Array): void {
    this.mutable();
    this.entries_.push([checkName(name), checkValue(value)]);
  }

  entries(): Entry[] {
    return this.entries_.map(([n, v]) => [n, v]);
  }

  clone(): Fields {
    const f = new Fields();
    f.entries_ = this.entries();
    return f;
  }

  private mutable(): void {
    if (this.immutable) throw { tag: 'immutable' };
  }
}

