/**
 * Every limit the ABI host enforces, each with the reason it exists. Values follow cpp-host's
 * `limits.h` unless noted, so a filter that works in Envoy works here.
 */

/** Largest serialised pairs blob accepted from a guest (header maps, local-response headers). */
export const MAX_PAIRS_BYTES = 1024 * 1024;

/** Most pairs in one blob; more is treated as malformed (cpp-host rejects it too). */
export const MAX_PAIRS_COUNT = 1024;

/**
 * Largest header (or trailer) map a guest may build, keys plus values: Envoy's default
 * max_request_headers_kb (60 KiB). Past it a header write answers BAD_ARGUMENT; without a cap a
 * guest could hand the client or the upstream a head no HTTP parser accepts (Node's own reads
 * 16 KiB).
 */
export const MAX_HEADER_MAP_BYTES = 60 * 1024;

/** Largest `random_get` request; above it WASI returns INVAL (cpp-host's limit). */
export const MAX_RANDOM_GET_BYTES = 64 * 1024;

/** Wasm frames kept in a trap backtrace: enough to locate the fault, short enough for one log line. */
export const MAX_BACKTRACE_FRAMES = 20;

/** Longest guest log message kept verbatim; longer ones are cut so one filter cannot flood the log. */
export const MAX_LOG_MESSAGE_BYTES = 64 * 1024;


/**
 * Longest callout timeout passed on, in ms (2^31 - 1, about 24.8 days): a Node timer set longer
 * fires at once. http_call refuses negative counts anyway; a gRPC deadline above this is capped.
 */
export const MAX_CALLOUT_TIMEOUT_MS = 0x7fffffff;

/**
 * Longest shared-data key accepted (`proxy_set_shared_data` answers BAD_ARGUMENT above it, and
 * `proxy_get_shared_data` NOT_FOUND, since nothing can be stored under it). cpp-host has no limit;
 * this is OpenResty's for `ngx.shared.DICT` keys (65535 bytes), the shared store Kong's plugins
 * use. The check runs before the key is read, so a guest cannot make the host hash megabytes.
 */
export const MAX_SHARED_DATA_KEY_BYTES = 65_535;

/**
 * Largest shared-data value accepted (BAD_ARGUMENT above it, before it is copied out of guest
 * memory). cpp-host has no limit; 1 MiB is memcached's default item size, ample for counters,
 * key sets and cached tokens, and a sixteenth of the default quota per vm_id, so one write can
 * never flush a vm_id's whole store.
 */
export const MAX_SHARED_DATA_VALUE_BYTES = 1024 * 1024;

/**
 * Budget checks (loop iterations and function entries) between two looks at the clock. The counter is
 * a module global, so a check is a few i32 ops; only every Nth one calls the host, which reads
 * `performance.now()` (~50 ns with the wasm→JS transition). At 10 000 the host call costs under
 * 0.01 ns per check, and since even a tight loop iteration takes ≥1 ns the clock is read at least
 * every ~10–50 µs of ordinary guest code, so a call overruns its budget by well under a millisecond.
 * (A guest could stretch the gap with huge loop-free bodies; start-up and the stack limit bound that.)
 */
export const BUDGET_CHECK_INTERVAL = 10_000;

/** WebAssembly page size; `limits.memoryMb` becomes a page count with it. */
export const WASM_PAGE_BYTES = 64 * 1024;

/**
 * Limits of a VM when the caller gives none (the config schema's defaults, repeated here because
 * abi/ cannot import config/): 50 ms per stream callback is ~1000× what a header filter needs and
 * still short enough that one runaway call delays the other requests only briefly; start-up parses
 * configuration and may build tables, so it gets a second; 128 MiB is the product brief's cap.
 */
export const DEFAULT_VM_LIMITS = Object.freeze({ cpuMs: 50, startCpuMs: 1000, memoryMb: 128 });

/**
 * Hostcalls between two looks at the clock by the hostcall wrapper (budget.ts): a guest that
 * loops over hostcalls passes few guest checks per unit of time. 64 × a typical hostcall
 * (0.1–2 µs) stays far below a millisecond; the poll is an increment and a compare otherwise.
 */
export const HOSTCALL_POLL = 64;

/**
 * How old the process's CPU reading may be when a guest call's clock starts (budget.ts). A
 * reading is a getrusage syscall, ~0.3 µs: taken at every call's first look at the clock it was
 * the largest part of the sandbox's cost (api-key 30% slower, bench/README.md). Reused for 1 ms,
 * it costs at most 0.03% of a busy core, and the CPU time between the reading and the call's
 * start (at most this much) is taken off what the call is charged.
 */
export const CPU_SAMPLE_MS = 1;

/**
 * Most metrics (distinct name and type) one VM's guests may define with `proxy_define_metric`,
 * and most names one plugin may add to the gateway's metrics over the life of the process
 * (admin/metrics.ts, across its VMs: reloads and recycles start fresh VMs). Each is a Prometheus
 * series that is never dropped, so without a cap a guest naming metrics after request data
 * (a path, a user id) grows the process and /metrics without bound. cpp-host and Envoy have no
 * cap; 1000 is ample for per-route or per-status metrics, the usual use.
 */
export const MAX_GUEST_METRICS = 1000;

/**
 * The gateway's zlib foreign functions (proxy/foreign.ts) run synchronously inside the guest's
 * call, as the ABI requires, so their size is their time on the event loop. Envoy caps neither.
 * `compress` takes at most 1 MiB (the default route bodyLimitBytes; deflate at zlib's default
 * level costs ~30-60 ms per MiB of JSON measured here, about one default cpuMs budget) and
 * `uncompress` writes at most 8 MiB (inflate runs ~5 ms per MiB, so the same budget, and a
 * zlib bomb, 1000:1 for zeros, stops there instead of filling guest memory). Over either the
 * function answers BAD_ARGUMENT having produced nothing.
 */
export const MAX_COMPRESS_INPUT_BYTES = 1024 * 1024;
export const MAX_UNCOMPRESS_OUTPUT_BYTES = 8 * 1024 * 1024;
