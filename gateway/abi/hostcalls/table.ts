/** A group of hostcalls keyed by their exact ABI names (one grep finds spec, SDKs and host). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Hostcall = (...args: any[]) => number | void;
export type HostcallTable = Record<string, Hostcall>;
