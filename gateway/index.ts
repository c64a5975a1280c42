/**
 * The public surface of edge-gateway as a library, every export by name.
 */
// The gateway: a configuration in, a running proxy out (README "Use as a library").
export { createGateway, Gateway } from './gateway.js';
export type { BoundAddresses, GatewayOptions, ValidationSummary } from './gateway.js';
export { ConfigError, loadConfigFile, parseConfig } from './config/load.js';
export { configJsonSchema } from './config/schema.js';
export type { ClusterConfig, GatewayConfig, ListenerConfig, PluginConfig, PluginLimits, RouteConfig } from './config/schema.js';
export { PluginsError } from './proxy/generation.js';
export type { PluginFailure } from './proxy/generation.js';
export { createLogger } from './log.js';
export type { Logger, LogLevelName } from './log.js';
export { createSharedState } from './shared-state/create.js';
export type { SharedState, SharedStateOptions } from './shared-state/create.js';
// The Proxy-Wasm host on its own, for embedding filters without the proxy.
export { WasmVm } from './abi/vm.js';
export type { VmOptions, VmPorts, VmFailure } from './abi/vm.js';
export { RootContext, StreamContext, CALL_FAILED } from './abi/context.js';
export type { PluginSpec } from './abi/context.js';
export {
  AbiVersion, BodyAction, BufferType, GRPC_STATUS_NONE, HeadersAction, LogLevel, MapType, MetricType, PeerType,
  Status, StopAction, StreamType,
} from './abi/enums.js';
export { HeaderMap } from './abi/header-map.js';
export { BodyBuffer } from './abi/body-buffer.js';
export { decodePairs, encodePairs, pairsSize } from './abi/pairs.js';
export type { Pairs } from './abi/pairs.js';
export { propBool, propDouble, propInt, propList, propMap, propString } from './abi/properties.js';
export { detectAbiVersion } from './abi/version.js';
export type {
  AbiLogger, Callouts, ForeignCallContext, ForeignFunction, GrpcCallRequest, GrpcCallResult, GrpcStreamEvents,
  GrpcStreamHandle, HttpCallRequest, HttpCallResponse, LocalResponse, MetricCell, MetricsSink, PluginOrigin,
  PluginPorts, PropertySource, QueueListener, QueueRegistration, Scheduler, SharedDataStore, SharedEntry, SharedQueueStore, StreamHost,
} from './abi/ports.js';
export { createModuleStore } from './modules/module-store.js';
export type { LoadedModule, ModuleStore, ModuleStoreStats } from './modules/module-store.js';
export { VmPool } from './abi/vm-pool.js';
export type { PoolModule, RootEvents, VmSpec } from './abi/vm-pool.js';
export { MemorySharedData, MemorySharedQueues } from './shared-state/memory.js';
export { ErrorCodes, GatewayError, isGatewayError } from './errors.js';
export type { ErrorCode } from './errors.js';
