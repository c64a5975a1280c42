/**
 * Foreign functions the gateway offers through proxy_call_foreign_function, named as Envoy names
 * them so filters written for Envoy find them: zlib `compress` / `uncompress`, and
 * `clear_route_cache`, a no-op here because routes are matched once on the headers as filters
 * leave them. Both zlib calls are bounded (abi/limits.ts): they run synchronously in the guest's
 * call, so an unbounded one would hold the event loop for as long as a guest's bytes say.
 */
import { deflateSync, inflateSync } from 'node:zlib';
import { Status } from '../abi/enums.js';
import { MAX_COMPRESS_INPUT_BYTES, MAX_UNCOMPRESS_OUTPUT_BYTES } from '../abi/limits.js';
import type { ForeignFunction } from '../abi/ports.js';

const REFUSED = Object.freeze({ status: Status.BAD_ARGUMENT });

const compress: ForeignFunction = (args) => (args.length > MAX_COMPRESS_INPUT_BYTES ? REFUSED : deflateSync(args));

const uncompress: ForeignFunction = (args) => {
  try {
    // zlib stops inflating at the cap and throws, so a bomb costs at most the cap's worth of work.
    return inflateSync(args, { maxOutputLength: MAX_UNCOMPRESS_OUTPUT_BYTES });
  } catch (err) {
    // Envoy answers SERIALIZATION_FAILURE for bytes that are not zlib data; too large is our own refusal.
    return (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' ? REFUSED : { status: Status.SERIALIZATION_FAILURE };
  }
};

export function gatewayForeignFunctions(): Map<string, ForeignFunction> {
  return new Map<string, ForeignFunction>([
    ['compress', compress],
    ['uncompress', uncompress],
    ['clear_route_cache', () => ({ status: Status.OK })],
  ]);
}
