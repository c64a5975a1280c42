/** proxy_on_foreign_function, for a filter that overrides onForeignFunction. */
import { anyOf } from "./dispatch";

export function proxy_on_foreign_function(contextId: u32, functionId: u32, argumentsSize: u32): void {
  anyOf(contextId, "proxy_on_foreign_function").onForeignFunction(functionId, <usize>argumentsSize);
}
