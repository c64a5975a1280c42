/**
 * gRPC callouts (reference §3.9): unary calls and streams to a cluster. Like http calls they are
 * owned by the root and answered by token; `Context.dispatchGrpcCall` / `openGrpcStream` route
 * the answers to the context that made the call. Messages are raw protobuf bytes (no framing).
 */
import { proxy_grpc_call, proxy_grpc_cancel, proxy_grpc_close, proxy_grpc_send, proxy_grpc_stream } from "./imports";
import { RET_U32, bufferLen, bufferPtr, stage, staged0, staged0Len, staged1, staged1Len, staged2, staged2Len } from "./memory";
import { serializePairs } from "./pairs";
import { getBufferBytes, ALL } from "./buffers";
import { getHeaderMapPairs } from "./maps";
import { BufferType, Header, MapType, Result, Status } from "./types";

/** Starts a unary call; the token, or `ParseFailure` (unknown cluster, as Envoy) / `InternalFailure`. */
export function grpcCall(upstream: string, service: string, method: string, initialMetadata: Header[], message: ArrayBuffer | null,
  timeoutMs: u32): Result<u32> {
  const md = serializePairs(initialMetadata);
  stage(upstream, service, method);
  store<u32>(RET_U32, 0);
  const status = <Status>proxy_grpc_call(staged0, staged0Len, staged1, staged1Len, staged2, staged2Len, bufferPtr(md), bufferLen(md),
    bufferPtr(message), bufferLen(message), timeoutMs, RET_U32);
  return new Result<u32>(status, load<u32>(RET_U32));
}

/** Opens a stream; the token to send on, or the host's refusal. */
export function grpcStream(upstream: string, service: string, method: string, initialMetadata: Header[]): Result<u32> {
  const md = serializePairs(initialMetadata);
  stage(upstream, service, method);
  store<u32>(RET_U32, 0);
  const status = <Status>proxy_grpc_stream(staged0, staged0Len, staged1, staged1Len, staged2, staged2Len, bufferPtr(md), bufferLen(md), RET_U32);
  return new Result<u32>(status, load<u32>(RET_U32));
}

/** Sends one message on a stream; `endStream` half-closes it. */
export function grpcSend(token: u32, message: ArrayBuffer | null, endStream: bool): Status {
  return <Status>proxy_grpc_send(token, bufferPtr(message), bufferLen(message), endStream ? 1 : 0);
}

/** Cancels a call or resets a stream. */
export function grpcCancel(token: u32): Status {
  return <Status>proxy_grpc_cancel(token);
}

/** Half-closes a stream (cancels a unary call). */
export function grpcClose(token: u32): Status {
  return <Status>proxy_grpc_close(token);
}

/** Initial metadata being delivered (map 4). */
export function getGrpcReceiveInitialMetadata(): Header[] {
  return getHeaderMapPairs(MapType.GrpcReceiveInitialMetadata);
}

/** Trailing metadata being delivered (map 5). */
export function getGrpcReceiveTrailingMetadata(): Header[] {
  return getHeaderMapPairs(MapType.GrpcReceiveTrailingMetadata);
}

/** The message being delivered (buffer 5). */
export function getGrpcReceiveBuffer(start: u32 = 0, maxSize: u32 = ALL): ArrayBuffer | null {
  return getBufferBytes(BufferType.GrpcReceiveBuffer, start, maxSize);
}
