// Imports a WASI interface directly: componentize-js maps the module specifier to the component
// import of that name, so the host's `wasi:cli/environment` is what the function sees (the world
// in the generated WIT declares the import; see filters/functions/build.ts).
import { getEnvironment } from 'wasi:cli/environment@0.2.10';

addEventListener('fetch', (event) => event.respondWith(handle()));

function handle() {
  // Read per request, not at module load: the top level runs at build time (a Wizer snapshot),
  // when the gateway's environment does not exist yet.
  const env = Object.fromEntries(getEnvironment());
  return new Response(JSON.stringify(env), { status: 200, headers: { 'content-type': 'application/json' } });
}
