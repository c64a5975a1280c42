/**
 * VM-wide properties: the node (`node`, `xds.node` as an envoy.config.core.v3.Node protobuf, and
 * its `id` / `cluster` fields as strings), readable from root and stream contexts alike.
 */
import type { PluginOrigin, PropertySource } from '../abi/ports.js';
import { propString } from '../abi/properties.js';
import type { NodeInfo } from './types.js';

/** Protobuf length-delimited field (wire type 2) for a small string field. */
function field(number: number, value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  const len: number[] = [];
  let n = bytes.length;
  do {
    len.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return Buffer.concat([Buffer.of((number << 3) | 2, ...len), bytes]);
}

/** envoy.config.core.v3.Node { id = 1; cluster = 2 }. */
export function nodeProtobuf(node: NodeInfo): Uint8Array {
  return Buffer.concat([field(1, node.id), field(2, node.cluster)]);
}

/**
 * The properties of `node`, the node of one configuration: each generation has its own, so a
 * request keeps the node facts of the configuration it started on across a reload.
 */
export function nodeProperties(node: NodeInfo): PropertySource {
  let proto: Uint8Array | null = null;
  return {
    property(path: readonly string[], _origin: PluginOrigin): Uint8Array | undefined {
      const rest = path[0] === 'xds' && path[1] === 'node' ? path.slice(2) : path[0] === 'node' ? path.slice(1) : null;
      if (rest === null) return undefined;
      if (rest.length === 0) return (proto ??= nodeProtobuf(node));
      if (rest[0] === 'id') return propString(node.id);
      if (rest[0] === 'cluster') return propString(node.cluster);
      return undefined;
    },
  };
}
