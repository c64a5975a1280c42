// Root id "compat_headers": stores the plugin configuration (a header value)
// and stamps request/response headers with it.
export * from "@solo-io/proxy-runtime/proxy";
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues,
  stream_context, log, LogLevelValues
} from "@solo-io/proxy-runtime";

class HeadersRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new HeadersContext(context_id, this);
  }

  onConfigure(configuration_size: u32): bool {
    // The SDK reads the plugin configuration into getConfiguration().
    const ok = super.onConfigure(configuration_size);
    log(LogLevelValues.info, "configured: " + this.getConfiguration());
    return ok;
  }
}

class HeadersContext extends Context {
  constructor(context_id: u32, root_context: HeadersRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const path = stream_context.headers.request.get(":path");
    stream_context.headers.request.add("x-compat-path", path);
    stream_context.headers.request.add("x-compat-config", this.root_context.getConfiguration());
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(headers: u32, end_of_stream: bool): FilterHeadersStatusValues {
    stream_context.headers.response.add("x-compat-response", "1");
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32): RootContext => new HeadersRoot(context_id), "compat_headers");
