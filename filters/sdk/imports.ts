/**
 * The raw Proxy-Wasm ABI 0.2.1 host functions, exactly as the host exports them from module
 * `env` (reference §3.16). Every function returns a `proxy_status_t` (see `Status` in types.ts);
 * outputs are written through the `ret*` pointers. Filters should use the typed wrappers of the
 * other files; these declarations are public only for the rare call the wrappers do not cover.
 *
 * Only standard ABI names are declared here, so a module built with this SDK links in Envoy as
 * well as in edge-gateway. AssemblyScript imports only the functions a module actually calls.
 */

// ---- context lifecycle (§3.1) -------------------------------------------------------------------
@external("env", "proxy_set_effective_context")
export declare function proxy_set_effective_context(contextId: u32): u32;
@external("env", "proxy_done")
export declare function proxy_done(): u32;

// ---- logging (§3.2) -------------------------------------------------------------------------------
@external("env", "proxy_log")
export declare function proxy_log(level: u32, messagePtr: usize, messageLen: usize): u32;
@external("env", "proxy_get_log_level")
export declare function proxy_get_log_level(retLevelPtr: usize): u32;

// ---- time and timers (§3.3) -----------------------------------------------------------------------
@external("env", "proxy_get_current_time_nanoseconds")
export declare function proxy_get_current_time_nanoseconds(retTimePtr: usize): u32;
@external("env", "proxy_set_tick_period_milliseconds")
export declare function proxy_set_tick_period_milliseconds(periodMs: u32): u32;

// ---- buffers (§3.5) ---------------------------------------------------------------------------------
@external("env", "proxy_get_buffer_bytes")
export declare function proxy_get_buffer_bytes(bufferType: u32, start: u32, maxSize: u32, retDataPtrPtr: usize, retSizePtr: usize): u32;
@external("env", "proxy_get_buffer_status")
export declare function proxy_get_buffer_status(bufferType: u32, retSizePtr: usize, retFlagsPtr: usize): u32;
@external("env", "proxy_set_buffer_bytes")
export declare function proxy_set_buffer_bytes(bufferType: u32, start: u32, size: u32, dataPtr: usize, dataLen: usize): u32;

// ---- header, trailer and metadata maps (§3.6) --------------------------------------------------------
@external("env", "proxy_get_header_map_pairs")
export declare function proxy_get_header_map_pairs(mapType: u32, retDataPtrPtr: usize, retSizePtr: usize): u32;
@external("env", "proxy_set_header_map_pairs")
export declare function proxy_set_header_map_pairs(mapType: u32, dataPtr: usize, dataLen: usize): u32;
@external("env", "proxy_get_header_map_size")
export declare function proxy_get_header_map_size(mapType: u32, retSizePtr: usize): u32;
@external("env", "proxy_get_header_map_value")
export declare function proxy_get_header_map_value(mapType: u32, keyPtr: usize, keyLen: usize, retDataPtrPtr: usize, retSizePtr: usize): u32;
@external("env", "proxy_add_header_map_value")
export declare function proxy_add_header_map_value(mapType: u32, keyPtr: usize, keyLen: usize, valuePtr: usize, valueLen: usize): u32;
@external("env", "proxy_replace_header_map_value")
export declare function proxy_replace_header_map_value(mapType: u32, keyPtr: usize, keyLen: usize, valuePtr: usize, valueLen: usize): u32;
@external("env", "proxy_remove_header_map_value")
export declare function proxy_remove_header_map_value(mapType: u32, keyPtr: usize, keyLen: usize): u32;

// ---- stream control and local responses (§3.7) -------------------------------------------------------
@external("env", "proxy_continue_stream")
export declare function proxy_continue_stream(streamType: u32): u32;
@external("env", "proxy_close_stream")
export declare function proxy_close_stream(streamType: u32): u32;
@external("env", "proxy_send_local_response")
export declare function proxy_send_local_response(statusCode: u32, detailsPtr: usize, detailsLen: usize, bodyPtr: usize, bodyLen: usize,
  headersPtr: usize, headersLen: usize, grpcStatus: i32): u32;
@external("env", "proxy_get_status")
export declare function proxy_get_status(retCodePtr: usize, retMessagePtrPtr: usize, retMessageSizePtr: usize): u32;

// ---- HTTP and gRPC callouts (§3.8, §3.9) -------------------------------------------------------------
@external("env", "proxy_http_call")
export declare function proxy_http_call(upstreamPtr: usize, upstreamLen: usize, headersPtr: usize, headersLen: usize, bodyPtr: usize,
  bodyLen: usize, trailersPtr: usize, trailersLen: usize, timeoutMs: u32, retTokenPtr: usize): u32;
@external("env", "proxy_grpc_call")
export declare function proxy_grpc_call(upstreamPtr: usize, upstreamLen: usize, servicePtr: usize, serviceLen: usize, methodPtr: usize,
  methodLen: usize, metadataPtr: usize, metadataLen: usize, messagePtr: usize, messageLen: usize, timeoutMs: u32, retTokenPtr: usize): u32;
@external("env", "proxy_grpc_stream")
export declare function proxy_grpc_stream(upstreamPtr: usize, upstreamLen: usize, servicePtr: usize, serviceLen: usize, methodPtr: usize,
  methodLen: usize, metadataPtr: usize, metadataLen: usize, retTokenPtr: usize): u32;
@external("env", "proxy_grpc_send")
export declare function proxy_grpc_send(token: u32, messagePtr: usize, messageLen: usize, endStream: u32): u32;
@external("env", "proxy_grpc_cancel")
export declare function proxy_grpc_cancel(token: u32): u32;
@external("env", "proxy_grpc_close")
export declare function proxy_grpc_close(token: u32): u32;

// ---- shared data and queues (§3.10, §3.11) -----------------------------------------------------------
@external("env", "proxy_get_shared_data")
export declare function proxy_get_shared_data(keyPtr: usize, keyLen: usize, retValuePtrPtr: usize, retValueSizePtr: usize, retCasPtr: usize): u32;
@external("env", "proxy_set_shared_data")
export declare function proxy_set_shared_data(keyPtr: usize, keyLen: usize, valuePtr: usize, valueLen: usize, cas: u32): u32;
@external("env", "proxy_register_shared_queue")
export declare function proxy_register_shared_queue(namePtr: usize, nameLen: usize, retQueueIdPtr: usize): u32;
@external("env", "proxy_resolve_shared_queue")
export declare function proxy_resolve_shared_queue(vmIdPtr: usize, vmIdLen: usize, namePtr: usize, nameLen: usize, retQueueIdPtr: usize): u32;
@external("env", "proxy_enqueue_shared_queue")
export declare function proxy_enqueue_shared_queue(queueId: u32, dataPtr: usize, dataLen: usize): u32;
@external("env", "proxy_dequeue_shared_queue")
export declare function proxy_dequeue_shared_queue(queueId: u32, retDataPtrPtr: usize, retSizePtr: usize): u32;

// ---- metrics (§3.12) ---------------------------------------------------------------------------------
@external("env", "proxy_define_metric")
export declare function proxy_define_metric(metricType: u32, namePtr: usize, nameLen: usize, retMetricIdPtr: usize): u32;
@external("env", "proxy_increment_metric")
export declare function proxy_increment_metric(metricId: u32, offset: i64): u32;
@external("env", "proxy_record_metric")
export declare function proxy_record_metric(metricId: u32, value: u64): u32;
@external("env", "proxy_get_metric")
export declare function proxy_get_metric(metricId: u32, retValuePtr: usize): u32;

// ---- properties (§3.13) ------------------------------------------------------------------------------
@external("env", "proxy_get_property")
export declare function proxy_get_property(pathPtr: usize, pathLen: usize, retValuePtrPtr: usize, retValueSizePtr: usize): u32;
@external("env", "proxy_set_property")
export declare function proxy_set_property(pathPtr: usize, pathLen: usize, valuePtr: usize, valueLen: usize): u32;

// ---- foreign functions (§3.14) -----------------------------------------------------------------------
@external("env", "proxy_call_foreign_function")
export declare function proxy_call_foreign_function(namePtr: usize, nameLen: usize, argsPtr: usize, argsLen: usize, retDataPtrPtr: usize,
  retSizePtr: usize): u32;
