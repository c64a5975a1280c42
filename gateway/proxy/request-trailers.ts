/**
 * Request trailers on their way upstream (Envoy's decodeTrailers): the client's trailers (HTTP/2,
 * or HTTP/1.1 chunked) go through every request filter's on_request_trailers, which may read and
 * change them (map 1), and then to the upstream after the body.
 *
 * Filters see them through the request body pipeline (body-pipeline.ts), which ends a body that has
 * trailers with the trailers callbacks. So the pipeline runs when a filter exports a body callback
 * or a trailers callback (BodyPipeline.wanted): a filter with on_request_trailers alone has no
 * other way to see them.
 *
 * Which upstream sends them: an `http2: true` cluster (h2-upstream.ts). undici sends no request
 * trailers (HTTP/1.1 or HTTP/2), so an HTTP/1.1 cluster gets the body without them; the filters
 * still see them.
 */
import type { IncomingMessage } from 'node:http';
import type { FlowDirection } from './flow-direction.js';
import { objectToPairs, withoutPseudo } from './headers.js';

/**
 * The trailers to send upstream once the request body has ended: as the filters left them (a
 * filter may have changed, removed or added them), else the client's; null when there are none.
 * Pseudo-headers and hop-by-hop fields never go (HTTP/2 refuses them in trailers).
 */
export function upstreamTrailers(req: IncomingMessage, d: FlowDirection): Record<string, string | string[]> | null {
  const flat = withoutPseudo(d.trailers !== null ? d.trailers.pairs : objectToPairs(req.trailers));
  if (flat.length === 0) return null;
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i];
    const had = out[name];
    out[name] = had === undefined ? flat[i + 1] : Array.isArray(had) ? [...had, flat[i + 1]] : [had, flat[i + 1]];
  }
  return out;
}
