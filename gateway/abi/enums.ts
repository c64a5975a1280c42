/**
 * Proxy-Wasm enumerations shared by every part of the host. Values are wire values (u32 in guest
 * memory or i32 on the call boundary) and must never be renumbered.
 */

/** `proxy_status_t` / cpp-host `WasmResult`: what every hostcall returns to the guest. */
export const Status = {
  OK: 0,
  NOT_FOUND: 1,
  BAD_ARGUMENT: 2,
  SERIALIZATION_FAILURE: 3,
  PARSE_FAILURE: 4,
  BAD_EXPRESSION: 5,
  INVALID_MEMORY_ACCESS: 6,
  EMPTY: 7,
  CAS_MISMATCH: 8,
  RESULT_MISMATCH: 9,
  INTERNAL_FAILURE: 10,
  BROKEN_CONNECTION: 11,
  UNIMPLEMENTED: 12,
} as const;
export type Status = (typeof Status)[keyof typeof Status];

/** `proxy_log_level_t`. */
export const LogLevel = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4, CRITICAL: 5 } as const;
export type LogLevel = (typeof LogLevel)[keyof typeof LogLevel];
export const LOG_LEVEL_NAMES = ['trace', 'debug', 'info', 'warn', 'error', 'critical'] as const;

/** `proxy_map_type_t`. */
export const MapType = {
  HTTP_REQUEST_HEADERS: 0,
  HTTP_REQUEST_TRAILERS: 1,
  HTTP_RESPONSE_HEADERS: 2,
  HTTP_RESPONSE_TRAILERS: 3,
  GRPC_RECEIVE_INITIAL_METADATA: 4,
  GRPC_RECEIVE_TRAILING_METADATA: 5,
  HTTP_CALL_RESPONSE_HEADERS: 6,
  HTTP_CALL_RESPONSE_TRAILERS: 7,
} as const;
export type MapType = (typeof MapType)[keyof typeof MapType];
export const MAX_MAP_TYPE = 7;

/** `proxy_buffer_type_t`. 6..8 exist from ABI 0.2.0 on. */
export const BufferType = {
  HTTP_REQUEST_BODY: 0,
  HTTP_RESPONSE_BODY: 1,
  DOWNSTREAM_DATA: 2,
  UPSTREAM_DATA: 3,
  HTTP_CALL_RESPONSE_BODY: 4,
  GRPC_RECEIVE_BUFFER: 5,
  VM_CONFIGURATION: 6,
  PLUGIN_CONFIGURATION: 7,
  FOREIGN_FUNCTION_ARGUMENTS: 8,
} as const;
export type BufferType = (typeof BufferType)[keyof typeof BufferType];
export const MAX_BUFFER_TYPE = 8;

/** `proxy_stream_type_t` (0.2.x). */
export const StreamType = { HTTP_REQUEST: 0, HTTP_RESPONSE: 1, DOWNSTREAM: 2, UPSTREAM: 3 } as const;
export type StreamType = (typeof StreamType)[keyof typeof StreamType];
export const MAX_STREAM_TYPE = 3;

/**
 * The two directions of an HTTP stream. The values are those of StreamType.HTTP_REQUEST/RESPONSE
 * and BufferType.HTTP_REQUEST_BODY/RESPONSE_BODY, so a stream or body type below 2 is a direction.
 */
export const Direction = { REQUEST: 0, RESPONSE: 1 } as const;
export type Direction = (typeof Direction)[keyof typeof Direction];

/** `proxy_metric_type_t`. */
export const MetricType = { COUNTER: 0, GAUGE: 1, HISTOGRAM: 2 } as const;
export type MetricType = (typeof MetricType)[keyof typeof MetricType];

/** `proxy_peer_type_t`. Rust declares it as a repr(u32) enum: pass only 0..2. */
export const PeerType = { UNKNOWN: 0, LOCAL: 1, REMOTE: 2 } as const;
export type PeerType = (typeof PeerType)[keyof typeof PeerType];

/**
 * What the host does after a headers callback, normalised from the guest's raw return value as
 * cpp-host does: 1 (Pause/StopIteration) becomes "stop everything including the body until
 * continued"; 2 (ContinueAndEndStream) is treated as Continue.
 */
export const HeadersAction = { CONTINUE: 0, STOP_ALL: 1 } as const;
export type HeadersAction = (typeof HeadersAction)[keyof typeof HeadersAction];

/** What the host does after a body callback. 1 (Pause) means "keep buffering, call me again". */
export const BodyAction = { CONTINUE: 0, STOP_AND_BUFFER: 1, STOP_AND_WATERMARK: 2, STOP_NO_BUFFER: 3 } as const;
export type BodyAction = (typeof BodyAction)[keyof typeof BodyAction];

/** Trailers and TCP callbacks: 0 continues, anything else stops. */
export const StopAction = { CONTINUE: 0, STOP: 1 } as const;
export type StopAction = (typeof StopAction)[keyof typeof StopAction];

/** gRPC status "none": `send_local_response` with this grpc_status is a plain HTTP reply. */
export const GRPC_STATUS_NONE = -1;

/** The ABI versions a module can declare through its `proxy_abi_version_*` marker export. */
export const AbiVersion = { V0_1_0: '0.1.0', V0_2_0: '0.2.0', V0_2_1: '0.2.1' } as const;
export type AbiVersion = (typeof AbiVersion)[keyof typeof AbiVersion];
