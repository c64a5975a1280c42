/**
 * Every callback the SDK implements, for a filter that wants them all (`export * from
 * "../sdk/exports";`). A shipped filter re-exports only `callbacks/lifecycle` and the callback
 * files of what its contexts override instead: the host skips a callback the module does not
 * export (as Envoy does), so a filter that never reads bodies costs no guest call per chunk, and
 * one that only checks requests costs none in the response phase (filters/README.md, "Callbacks").
 */
export * from "./callbacks/lifecycle";
export * from "./callbacks/request-headers";
export * from "./callbacks/response-headers";
export * from "./callbacks/bodies";
export * from "./callbacks/log";
export * from "./callbacks/timers";
export * from "./callbacks/callouts";
export * from "./callbacks/foreign";
