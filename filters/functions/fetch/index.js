// Calls out through `wasi:http/outgoing-handler` (StarlingMonkey's fetch). The authority of the
// outgoing URL is a cluster name, not a DNS name: the gateway resolves it to a configured cluster
// and refuses any name it does not know, which `?host=` lets the tests check.
addEventListener('fetch', (event) => event.respondWith(handle(event.request)));

const PREFIX = '/fn/fetch';

async function handle(request) {
  const url = new URL(request.url, 'http://localhost');
  const host = url.searchParams.get('host');
  let target;
  if (host !== null) {
    target = `http://${host}/`;
  } else {
    const rest = url.pathname.startsWith(PREFIX) ? url.pathname.slice(PREFIX.length) : url.pathname;
    target = `http://backend${rest === '' ? '/' : rest}`;
  }
  try {
    const upstream = await fetch(target);
    const text = await upstream.text();
    return json(200, { upstreamStatus: upstream.status, upstreamBody: text });
  } catch (err) {
    // A refused or failed call is the gateway's answer, not the function's fault: report it as a
    // bad gateway so a caller can tell it apart from the function's own errors.
    return json(502, { error: String(err) });
  }
}

function json(status, value) {
  return new Response(JSON.stringify(value), { status, headers: { 'content-type': 'application/json' } });
}
