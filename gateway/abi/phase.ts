/** Small shared constants of the VM machinery, kept apart so hostcall files need not import vm.ts. */

/** Which hostcalls may run now (reference §2.1.1). */
export const Phase = { RUNNING: 0, STARTING: 1, ALLOCATING: 2 } as const;

/** Side effects a guest asks for during a call, applied after the outermost guest call returns. */
export const Deferred = { CONTINUE: 0, CLOSE: 1, LOCAL_REPLY: 2, DELETE_ROOT: 3 } as const;
export type Deferred = (typeof Deferred)[keyof typeof Deferred];
