/**
 * The public API of the AssemblyScript Proxy-Wasm SDK (ABI 0.2.1), listed by name. A filter
 * imports what it uses from here and re-exports the Wasm callbacks it handles from `./callbacks`
 * (or all of them from `./exports`):
 *
 *   import { HttpContext, RootContext, Action, registerRootContext } from "../sdk/index";
 *   export * from "../sdk/callbacks/lifecycle";
 *   export * from "../sdk/callbacks/request-headers";
 *
 * See filters/README.md for a walk-through.
 */

// Contexts and registration
export { Context, RootContext, HttpContext } from "./context";
export { registerRootContext, RootContextFactory } from "./registry";

// Types
export { Action, BufferType, GrpcStatus, Header, LogLevel, MapType, MetricType, Result, Status, StreamType, statusName } from "./types";

// Logging
export { log, logTrace, logDebug, logInfo, logWarn, logError, logCritical, getLogLevel } from "./log";

// Time and timers
export { getCurrentTimeNanoseconds, setTickPeriodMilliseconds } from "./timers";

// Header, trailer and metadata maps
export {
  getHeaderMapPairs, setHeaderMapPairs, getHeaderMapValue, addHeaderMapValue, replaceHeaderMapValue, removeHeaderMapValue, getHeaderMapSize,
} from "./maps";

// Buffers and configuration
export {
  ALL, BufferStatus, getBufferBytes, getBufferString, setBufferBytes, getBufferStatus, getVmConfiguration, getPluginConfiguration,
} from "./buffers";

// Properties
export {
  getProperty, getPropertyString, getPropertyInt, getPropertyBool, getPropertyMap, setProperty, setPropertyString,
} from "./properties";

// Stream control and local responses
export { continueStream, closeStream, sendLocalResponse } from "./stream";

// HTTP callouts and callout status
export {
  httpCall, getHttpCallResponseHeaders, getHttpCallResponseHeader, getHttpCallResponseBody, getHttpCallResponseTrailers, CalloutStatus, getStatus,
} from "./http-call";

// gRPC callouts
export {
  grpcCall, grpcStream, grpcSend, grpcCancel, grpcClose, getGrpcReceiveInitialMetadata, getGrpcReceiveTrailingMetadata, getGrpcReceiveBuffer,
} from "./grpc";

// Shared data and queues
export { SharedData, getSharedData, getSharedDataString, setSharedData } from "./shared-data";
export { registerSharedQueue, resolveSharedQueue, enqueueSharedQueue, dequeueSharedQueue } from "./shared-queue";

// Metrics
export { defineMetric, incrementMetric, recordMetric, getMetric, Counter, Gauge, Histogram } from "./metrics";

// Foreign functions
export { callForeignFunction } from "./foreign";

// Pairs codec
export { serializePairs, deserializePairs } from "./pairs";

// JSON
export { JsonKind, JsonValue, JsonError, JsonResult, MAX_DEPTH, parseJson, parseJsonString, validateJson, quoteJsonString, kindName } from "./json";

// Plugin configuration readers
export {
  Checked, isBlankConfiguration, readConfigObject, unknownKeyError, checkKeys, readBool, readString, readNonEmptyString, readStringArray, readInteger,
  checkToken, isToken, hasControlCharacter, describeValue, quote, itemPath,
} from "./config";
