// Root id "compat_local": answers GET /deny itself with a 403.
export * from "@solo-io/proxy-runtime/proxy";
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues,
  stream_context, HeaderPair, send_local_response, GrpcStatusValues
} from "@solo-io/proxy-runtime";

class LocalRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new LocalContext(context_id, this);
  }
}

class LocalContext extends Context {
  constructor(context_id: u32, root_context: LocalRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    if (stream_context.headers.request.get(":path") == "/deny") {
      send_local_response(403, "", String.UTF8.encode("forbidden by filter"),
        [new HeaderPair(String.UTF8.encode("x-denied"), String.UTF8.encode("1"))],
        GrpcStatusValues.InvalidCode);
      return FilterHeadersStatusValues.StopIteration;
    }
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32): RootContext => new LocalRoot(context_id), "compat_local");
