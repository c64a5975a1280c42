/**
 * Stream control and local responses (reference §3.7, §6.6, §6.7). These act on the current
 * context, or on the context the SDK made effective before an http-call response callback.
 */
import { proxy_close_stream, proxy_continue_stream, proxy_send_local_response } from "./imports";
import { bufferLen, bufferPtr, stage, staged0, staged0Len } from "./memory";
import { serializePairs } from "./pairs";
import { GrpcStatus, Header, Status, StreamType } from "./types";

/** Resumes a stream paused by returning `Action.Pause`; the host resumes after the callback returns. */
export function continueStream(stream: StreamType): Status {
  return <Status>proxy_continue_stream(<u32>stream);
}

/** Resets the HTTP stream (or closes the TCP connection) after the callback returns. */
export function closeStream(stream: StreamType): Status {
  return <Status>proxy_close_stream(<u32>stream);
}

/**
 * Answers the client with a response generated here instead of the upstream's (or in place of
 * it, from `onResponseHeaders`). `headers` are added to the reply; `details` goes to the access
 * log; `grpcStatus` other than `None` makes it a gRPC reply. The host sends it after the callback
 * returns and treats the callback as `Pause` whatever it returns.
 */
export function sendLocalResponse(statusCode: u32, body: ArrayBuffer | null, headers: Header[], details: string = "",
  grpcStatus: GrpcStatus = GrpcStatus.None): Status {
  const pairs = serializePairs(headers);
  stage(details);
  return <Status>proxy_send_local_response(statusCode, staged0, staged0Len, bufferPtr(body), bufferLen(body),
    bufferPtr(pairs), bufferLen(pairs), <i32>grpcStatus);
}
