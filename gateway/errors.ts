/**
 * The one table of host-side error codes. Every error the gateway raises about its own inputs
 * (config, modules, plugins) carries a `GW_ERR_<AREA>_<WHAT>` code from here, a message that names
 * the file, field or module at fault, and the HTTP status the data plane answers with when the
 * error surfaces on a request. Status codes returned to guests (enums.ts) and plugin health are
 * separate channels and never use this table.
 */

export const ErrorCodes = {
  // ABI host: loading and running a module
  GW_ERR_ABI_VERSION: { status: 500, doc: 'the module exports no known proxy_abi_version_* marker' },
  GW_ERR_ABI_LINK: { status: 500, doc: 'the module imports something the host does not provide, or with another signature' },
  GW_ERR_ABI_EXPORT: { status: 500, doc: 'a proxy_on_* export has the wrong number of parameters, or memory/allocator is missing' },
  GW_ERR_ABI_START: { status: 500, doc: 'the module trapped or exited during instantiation, _initialize, main or _start' },
  GW_ERR_ABI_TRAP: { status: 503, doc: 'the guest trapped (unreachable, out-of-bounds access, panic, abort) during a callback' },
  GW_ERR_ABI_PROC_EXIT: { status: 503, doc: 'the guest called WASI proc_exit, which ends the call as a failure' },
  GW_ERR_ABI_RESTRICTED: { status: 503, doc: 'the guest called a hostcall not allowed in the current phase (start-up or allocation)' },
  GW_ERR_ABI_VM_START: { status: 500, doc: 'proxy_on_vm_start returned false' },
  GW_ERR_ABI_CONFIGURE: { status: 500, doc: 'proxy_on_configure returned false' },
  GW_ERR_ABI_VM_FAILED: { status: 503, doc: 'a callback was requested on a VM that already failed' },
  GW_ERR_ABI_BUDGET: { status: 503, doc: 'a guest call ran past its CPU budget (limits.cpuMs, or limits.startCpuMs during start-up) and was stopped' },
  GW_ERR_ABI_STACK: { status: 503, doc: 'the guest overflowed its call stack (deep or endless recursion)' },
  GW_ERR_ABI_MEMORY: { status: 500, doc: 'the module needs more memory than limits.memoryMb allows, or declares a memory the host cannot cap' },
  GW_ERR_ABI_CAPABILITY: { status: 500, doc: 'the module imports a hostcall that the plugin\'s allowedHostcalls does not list' },
  // Module store
  GW_ERR_MODULE_READ: { status: 500, doc: 'the module file could not be read' },
  GW_ERR_MODULE_FETCH: { status: 500, doc: 'the module could not be fetched from its URL (network error, non-200 status, over the size cap)' },
  GW_ERR_MODULE_SHA256: { status: 500, doc: 'the module bytes do not match the pinned SHA-256' },
  GW_ERR_MODULE_INVALID: { status: 500, doc: 'the bytes are not a valid WebAssembly module' },
  GW_ERR_MODULE_COMPILE: { status: 500, doc: 'the engine failed to compile valid-looking bytes for another reason (e.g. out of memory); not remembered, a retry may pass' },
  GW_ERR_MODULE_SIGNATURE: { status: 500, doc: 'the module has no signature where one is required (requireSignature), or its ed25519 signature does not verify against any of modules.trustedKeys' },
  GW_ERR_MODULE_REGISTRY: { status: 500, doc: 'a module or tag could not be had from the Redis module registry (unreachable, unknown tag, bytes missing or not matching their SHA-256) nor from the local cache directory' },
  GW_ERR_MODULE_OPTIONS: { status: 500, doc: 'createModuleStore was given a maxBytes that is not a positive integer' },
  // Configuration
  GW_ERR_CONFIG_READ: { status: 500, doc: 'the configuration file could not be read' },
  GW_ERR_CONFIG_INVALID: { status: 500, doc: 'the configuration has syntax errors, invalid fields or broken references (each listed with its field)' },
  GW_ERR_CONFIG_UNSUPPORTED: { status: 500, doc: 'the configuration asks for something the schema reserves but this version does not implement yet; the message names the field' },
  // Plugin administration (admin API and CLI)
  GW_ERR_ADMIN_UNAUTHORIZED: { status: 401, doc: 'a mutating admin call came without the bearer token of admin.token (or the variable admin.tokenEnv names); with no token configured, changes through the API are off' },
  GW_ERR_PLUGIN_UNKNOWN: { status: 404, doc: 'an admin call named a plugin the running configuration does not have' },
  GW_ERR_PLUGIN_CHANGE: { status: 400, doc: 'an admin change is malformed or does not apply (a canary on a service, a promote with no canary, a body that is neither wasm nor JSON); the message says which' },
  // Edge functions
  GW_ERR_FUNCTION_COMPONENT: { status: 500, doc: 'a function\'s bytes are not a WebAssembly component jco can transpile (a core module, corrupt bytes), or it does not export wasi:http/incoming-handler' },
  GW_ERR_FUNCTION_IMPORT: { status: 500, doc: 'a function\'s component imports an interface functions do not provide (only wasi:http, io, cli, clocks, random and an empty filesystem)' },
  GW_ERR_FUNCTION_INSTANCE: { status: 500, doc: 'a function\'s component could not be instantiated (it trapped while starting, or needs more than limits.memoryMb)' },
  GW_ERR_FUNCTION_TIMEOUT: { status: 504, doc: 'a function did not finish its response within limits.timeoutMs; its instance was discarded' },
  GW_ERR_FUNCTION_FAILED: { status: 503, doc: 'a function trapped, exited or returned no response; its instance was discarded' },
  GW_ERR_FUNCTION_OVERLOADED: { status: 503, doc: 'every instance of a function was busy and its queue (limits.maxQueue) was full, or the wait passed limits.queueTimeoutMs' },
  // Listeners
  GW_ERR_TLS_CERTIFICATE: { status: 500, doc: 'a listener\'s TLS certificate, key or client CA could not be read or used (unparsable PEM, a key that is not the certificate\'s); the message names the field and the files' },
  // Gateway lifecycle and metrics
  GW_ERR_GATEWAY_DRAINING: { status: 503, doc: 'a reload was asked of a gateway that is draining (stopping): the configuration is not applied' },
  GW_ERR_METRIC_TYPE: { status: 500, doc: 'a guest defined a metric under a name already defined with another type (proxy_define_metric answers INTERNAL_FAILURE)' },
  GW_ERR_METRIC_NAME: { status: 500, doc: 'a guest defined a metric whose name cannot be exported (a reserved or repeated tag, tags without a name) or whose tags differ from the metric already defined under that name (proxy_define_metric answers INTERNAL_FAILURE)' },
} as const satisfies Record<string, { status: number; doc: string }>;

export type ErrorCode = keyof typeof ErrorCodes;

export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GatewayError';
    this.code = code;
    this.status = ErrorCodes[code].status;
  }

  override toString(): string {
    return `${this.code}: ${this.message}`;
  }
}

export function isGatewayError(err: unknown, code?: ErrorCode): err is GatewayError {
  return err instanceof GatewayError && (code === undefined || err.code === code);
}
