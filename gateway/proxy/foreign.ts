/**
 * Foreign functions the gateway offers through proxy_call_foreign_function, named as Envoy names
 * them so filters written for Envoy find them: zlib `compress` / `uncompress`, and
 * `clear_route_cache`, a no-op here because routes are matched once on the headers as filters
 * leave them.
 */
import { deflateSync, inflateSync } from 'node:zlib';
import { Status } from '../abi/enums.js';
import type { ForeignFunction } from '../abi/ports.js';

export function gatewayForeignFunctions(): Map<string, ForeignFunction> {
  return new Map<string, ForeignFunction>([
    ['compress', (args) => deflateSync(args)],
    ['uncompress', (args) => {
      try {
        return inflateSync(args);
      } catch {
        return { status: Status.SERIALIZATION_FAILURE };
      }
    }],
    ['clear_route_cache', () => ({ status: Status.OK })],
  ]);
}
