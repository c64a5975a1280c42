// Root id "compat_callout": asks cluster "auth" before letting a request through.
export * from "@solo-io/proxy-runtime/proxy";
import {
  RootContext, Context, BaseContext, registerRootContext, FilterHeadersStatusValues,
  stream_context, HeaderPair, Headers, send_local_response, GrpcStatusValues,
  WasmResultValues, log, LogLevelValues
} from "@solo-io/proxy-runtime";

function pair(key: string, value: string): HeaderPair {
  return new HeaderPair(String.UTF8.encode(key), String.UTF8.encode(value));
}

class CalloutRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new CalloutContext(context_id, this);
  }
}

class CalloutContext extends Context {
  constructor(context_id: u32, root_context: CalloutRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const token = stream_context.headers.request.get("x-token");
    const callHeaders: Headers = [
      pair(":method", "GET"),
      pair(":path", "/check"),
      pair(":authority", "auth"),
    ];
    if (token.length > 0) {
      callHeaders.push(pair("x-token", token));
    }
    // No closures in AssemblyScript: the SDK hands the originating context
    // back to the callback (after proxy_set_effective_context(origin id)).
    const result = this.root_context.httpCall("auth", callHeaders, new ArrayBuffer(0), [], 1000, this,
      (origin: Context, headers: u32, body_size: usize, trailers: u32): void => {
        const status = stream_context.headers.http_callback.get(":status");
        if (status == "200") {
          stream_context.headers.request.add("x-auth", "ok");
          origin.continueRequest();
        } else {
          send_local_response(403, "", String.UTF8.encode("denied"), [], GrpcStatusValues.InvalidCode);
        }
      });
    if (result != WasmResultValues.Ok) {
      log(LogLevelValues.warn, "auth callout failed: " + result.toString());
      send_local_response(503, "", String.UTF8.encode("callout failed"), [], GrpcStatusValues.InvalidCode);
    }
    return FilterHeadersStatusValues.StopIteration;
  }
}

registerRootContext((context_id: u32): RootContext => new CalloutRoot(context_id), "compat_callout");
