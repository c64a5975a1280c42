/**
 * Where an upstream answer ends: with its headers (no body, no trailers follow), or later. Besides
 * HTTP's own cases, gRPC's trailers-only answer (its HTTP/2 mapping: `grpc-status` in the one
 * HEADERS frame, with END_STREAM) ends with its headers, so the filters get on_response_headers
 * with end_of_stream and no body or trailers callback, as in Envoy, and an HTTP/2 client gets it as
 * one HEADERS frame with END_STREAM again (response-writer.ts), which is how gRPC clients read a
 * status from the headers.
 */
import { NO_BODY_STATUS } from './headers.js';
import { isGrpcContentType } from './local-reply.js';
import type { UpstreamHeaders } from './upstream-exchange.js';

/** A gRPC answer whose status came with its headers (trailers-only). */
export function isGrpcTrailersOnly(headers: UpstreamHeaders): boolean {
  const type = headers['content-type'];
  return headers['grpc-status'] !== undefined && isGrpcContentType(typeof type === 'string' ? type : undefined);
}

/** Whether the answer `status` with `headers` to a `method` request ends with its headers. */
export function endsWithHeaders(status: number, method: string | undefined, headers: UpstreamHeaders): boolean {
  return NO_BODY_STATUS.has(status) || method === 'HEAD' || headers['content-length'] === '0' || isGrpcTrailersOnly(headers);
}
