/**
 * Where the bucket lives in shared data (every name is ASCII-safe: `%`, `/` and line breaks in a
 * segment are percent-encoded):
 *
 *   rl/<domain>/<key>/nodes          the ids of the nodes that have an entry, one per line
 *   rl/<domain>/<key>/node/<node>    that node's entry (bucket.ts), written only by that node
 *
 * Every write is conditional on the CAS just read. The index only grows; a node checks that it is
 * listed on every request, so an id lost to a racing first write (the ABI has no create-if-absent)
 * is written back by that node's next request.
 */
import { Status, getSharedData, setSharedData } from "../sdk/index";
import { Entry, decodeEntry, encodeEntry } from "./bucket";

/** CAS retries before giving up on a write (another writer won every time). */
export const CAS_ATTEMPTS = 8;

/** `s` with `%`, `/`, CR and LF percent-encoded, so it is one segment of a shared-data name. */
export function escapeSegment(s: string): string {
  let plain = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x25 || c == 0x2f || c == 0x0a || c == 0x0d) {
      plain = false;
      break;
    }
  }
  if (plain) return s;
  return s.replaceAll("%", "%25").replaceAll("/", "%2F").replaceAll("\n", "%0A").replaceAll("\r", "%0D");
}

/** The sum of every node's entry for one key, and this node's own entry with its CAS. */
export class Totals {
  sum: f64 = 0;
  latest: u64 = 0;
  ownNet: f64 = 0;
  ownCas: u32 = 0;
}

/** One key's bucket as seen from node `node` (an escaped segment). */
export class Bucket {
  private readonly base: string;

  constructor(domain: string, key: string, private node: string) {
    this.base = "rl/" + domain + "/" + key;
  }

  /** The listed node ids, this node's included: it is added (CAS) when missing. */
  nodes(): string[] {
    const name = this.base + "/nodes";
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const data = getSharedData(name);
      const text = data.value === null ? "" : String.UTF8.decode(data.value!);
      const ids = text.length == 0 ? new Array<string>() : text.split("\n");
      if (ids.includes(this.node)) return ids;
      ids.push(this.node);
      if (setSharedData(name, String.UTF8.encode(ids.join("\n")), data.cas) == Status.Ok) return ids;
    }
    // Could not list this node: its entry still counts for itself, not yet for the others.
    return [this.node];
  }

  /** Reads every listed node's entry. */
  read(nodes: string[]): Totals {
    const totals = new Totals();
    for (let i = 0; i < nodes.length; i++) {
      const id = unchecked(nodes[i]);
      const data = getSharedData(this.entryName(id));
      const entry: Entry = decodeEntry(data.value);
      totals.sum += entry.net;
      if (entry.at > totals.latest) totals.latest = entry.at;
      if (id == this.node) {
        totals.ownNet = entry.net;
        totals.ownCas = data.cas;
      }
    }
    return totals;
  }

  /** Writes this node's entry if it still has CAS `cas` (0: it did not exist). */
  write(net: f64, at: u64, cas: u32): Status {
    return setSharedData(this.entryName(this.node), encodeEntry(net, at), cas);
  }

  private entryName(node: string): string {
    return this.base + "/node/" + node;
  }
}
