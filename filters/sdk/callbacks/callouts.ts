/**
 * The answers to HTTP and gRPC callouts, for a filter that makes them: always addressed to the
 * root, routed to the context that called (dispatch.ts calloutTarget).
 */
import { CalloutKind, calloutKind } from "../registry";
import { calloutTarget } from "./dispatch";

export function proxy_on_http_call_response(rootId: u32, token: u32, numHeaders: u32, bodySize: u32, numTrailers: u32): void {
  const target = calloutTarget(rootId, token, true, "proxy_on_http_call_response");
  if (target !== null) target.onHttpCallResponse(token, numHeaders, <usize>bodySize, numTrailers);
}

// Metadata events concern streams only; for a unary call the answer is its message or its close
// (the Rust SDK ignores them too).
export function proxy_on_grpc_receive_initial_metadata(rootId: u32, token: u32, numElements: u32): void {
  if (calloutKind(token) != CalloutKind.GrpcStream) return;
  const target = calloutTarget(rootId, token, false, "proxy_on_grpc_receive_initial_metadata");
  if (target !== null) target.onGrpcStreamInitialMetadata(token, numElements);
}

export function proxy_on_grpc_receive(rootId: u32, token: u32, messageSize: u32): void {
  const stream = calloutKind(token) == CalloutKind.GrpcStream;
  // A unary call's message is its answer; the close that follows is then only bookkeeping.
  const target = calloutTarget(rootId, token, !stream, "proxy_on_grpc_receive");
  if (target === null) return;
  if (stream) target.onGrpcStreamMessage(token, <usize>messageSize);
  else target.onGrpcCallResponse(token, 0, <usize>messageSize);
}

export function proxy_on_grpc_receive_trailing_metadata(rootId: u32, token: u32, numElements: u32): void {
  if (calloutKind(token) != CalloutKind.GrpcStream) return;
  const target = calloutTarget(rootId, token, false, "proxy_on_grpc_receive_trailing_metadata");
  if (target !== null) target.onGrpcStreamTrailingMetadata(token, numElements);
}

export function proxy_on_grpc_close(rootId: u32, token: u32, statusCode: u32): void {
  const stream = calloutKind(token) == CalloutKind.GrpcStream;
  const target = calloutTarget(rootId, token, true, "proxy_on_grpc_close");
  if (target === null) return;
  if (stream) target.onGrpcStreamClose(token, statusCode);
  else target.onGrpcCallResponse(token, statusCode, 0);
}
