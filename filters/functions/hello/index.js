// A fetch-event handler: componentize-js (StarlingMonkey) turns the fetch event into the
// component's `wasi:http/incoming-handler` export, so no WIT bindings are written by hand.
addEventListener('fetch', (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  // request.url may lack an authority when the host sends none; a base keeps URL from throwing.
  const url = new URL(request.url, 'http://localhost');
  const headers = new Headers({ 'content-type': 'text/plain; charset=utf-8', 'x-function': 'hello' });
  const tag = request.headers.get('x-request-tag');
  if (tag !== null) headers.set('x-echo-tag', tag);

  // Only statuses a response can carry with a body; anything else keeps the default 200.
  const wanted = Number.parseInt(url.searchParams.get('status') ?? '', 10);
  const status = wanted >= 200 && wanted <= 599 ? wanted : 200;

  const chunks = request.method === 'POST'
    ? ['echo', ': ', await request.text()]
    : ['hello ', 'from ', `${url.pathname}\n`];

  // Several enqueued chunks rather than one string, so the body goes out as a stream (no
  // content-length) and the gateway's tests exercise its streamed-response path.
  const encoder = new TextEncoder();
  const body = new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
  return new Response(body, { status, headers });
}
