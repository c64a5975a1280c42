/**
 * ABI enumerations (reference §5) and the small value types the wrappers return. Names follow
 * the Rust SDK (`proxy_wasm::types`) so its documentation carries over.
 */

/** `proxy_status_t`: what every hostcall returns (§5.1). */
export enum Status {
  Ok = 0,
  NotFound = 1,
  BadArgument = 2,
  SerializationFailure = 3,
  ParseFailure = 4,
  BadExpression = 5,
  InvalidMemoryAccess = 6,
  Empty = 7,
  CasMismatch = 8,
  ResultMismatch = 9,
  InternalFailure = 10,
  BrokenConnection = 11,
  Unimplemented = 12,
}

/** `proxy_log_level_t` (§5.2). */
export enum LogLevel {
  Trace = 0,
  Debug = 1,
  Info = 2,
  Warn = 3,
  Error = 4,
  Critical = 5,
}

/**
 * What a stream callback returns (§5.6). From a headers callback `Pause` stops everything
 * (headers, body, trailers) until `resumeHttpRequest()`/`resumeHttpResponse()`; from a body
 * callback it buffers, and the callback is called again with the cumulative size.
 */
export enum Action {
  Continue = 0,
  Pause = 1,
}

/** `proxy_map_type_t`: header, trailer and metadata maps (§5.3). */
export enum MapType {
  HttpRequestHeaders = 0,
  HttpRequestTrailers = 1,
  HttpResponseHeaders = 2,
  HttpResponseTrailers = 3,
  GrpcReceiveInitialMetadata = 4,
  GrpcReceiveTrailingMetadata = 5,
  HttpCallResponseHeaders = 6,
  HttpCallResponseTrailers = 7,
}

/** `proxy_buffer_type_t` (§5.4). */
export enum BufferType {
  HttpRequestBody = 0,
  HttpResponseBody = 1,
  DownstreamData = 2,
  UpstreamData = 3,
  HttpCallResponseBody = 4,
  GrpcReceiveBuffer = 5,
  VmConfiguration = 6,
  PluginConfiguration = 7,
  ForeignFunctionArguments = 8,
}

/** `proxy_stream_type_t` for `continueStream`/`closeStream` (§5.5). */
export enum StreamType {
  HttpRequest = 0,
  HttpResponse = 1,
  Downstream = 2,
  Upstream = 3,
}

/** `proxy_metric_type_t` (§5.8). */
export enum MetricType {
  Counter = 0,
  Gauge = 1,
  Histogram = 2,
}

/** gRPC status codes (§5.9); `None` (-1) means "not a gRPC reply" in `sendLocalResponse`. */
export enum GrpcStatus {
  None = -1,
  Ok = 0,
  Cancelled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
}

/** One entry of a header, trailer or metadata map, in map order; names may repeat. */
export class Header {
  constructor(public name: string, public value: string) {}
}

/**
 * A hostcall's outcome where the Rust SDK returns `Result<T, Status>`: `value` is meaningful only
 * when `ok` (status `Status.Ok`).
 */
export class Result<T> {
  constructor(public status: Status, public value: T) {}
  get ok(): bool {
    return this.status == Status.Ok;
  }
}

/** The name of a status for log messages, e.g. "NOT_FOUND". */
export function statusName(status: Status): string {
  switch (status) {
    case Status.Ok: return "OK";
    case Status.NotFound: return "NOT_FOUND";
    case Status.BadArgument: return "BAD_ARGUMENT";
    case Status.SerializationFailure: return "SERIALIZATION_FAILURE";
    case Status.ParseFailure: return "PARSE_FAILURE";
    case Status.BadExpression: return "BAD_EXPRESSION";
    case Status.InvalidMemoryAccess: return "INVALID_MEMORY_ACCESS";
    case Status.Empty: return "EMPTY";
    case Status.CasMismatch: return "CAS_MISMATCH";
    case Status.ResultMismatch: return "RESULT_MISMATCH";
    case Status.InternalFailure: return "INTERNAL_FAILURE";
    case Status.BrokenConnection: return "BROKEN_CONNECTION";
    case Status.Unimplemented: return "UNIMPLEMENTED";
    default: return "STATUS_" + (<i32>status).toString();
  }
}
