/**
 * The hash an operator compares across nodes: sha256 of the parsed configuration as JSON, with
 * `node` (id, cluster) left out, so every node started from one file (with its own --node-id)
 * shows the same hash, and a reload that changes anything else shows a new one.
 */
import { createHash } from 'node:crypto';
import type { GatewayConfig } from './schema.js';

const hashes = new WeakMap<GatewayConfig, string>();

export function configHash(config: GatewayConfig): string {
  let hash = hashes.get(config);
  if (hash === undefined) {
    const { node: _node, ...rest } = config;
    hashes.set(config, (hash = createHash('sha256').update(JSON.stringify(rest)).digest('hex')));
  }
  return hash;
}
