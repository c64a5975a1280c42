#!/usr/bin/env node
// A tiny *recording* Proxy-Wasm host, only for documenting what the built
// modules do: it drives build/*.wasm through a few scenarios and prints every
// hostcall (with decoded arguments) and every callback return value.
// It is not the gateway's host and is not a test; see README.md.
//   node scripts/trace.js            all scenarios
//   node scripts/trace.js --debug    also print the SDK's debug-level proxy_log lines
'use strict';
const fs = require('fs');
const path = require('path');

const SHOW_DEBUG = process.argv.includes('--debug');
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'critical'];
const OK = 0, NOT_FOUND = 1, BAD_ARGUMENT = 2, INVALID_MEMORY_ACCESS = 6;
const dec = new TextDecoder();
const enc = new TextEncoder();

class ProcExit extends Error {}

function load(name, opts = {}) {
  const bytes = fs.readFileSync(path.resolve(__dirname, '..', 'build', `${name}.wasm`));
  const st = {
    rootId: opts.rootId, config: enc.encode(opts.config ?? ''),
    current: 0, effective: null, maps: new Map(), callResponse: null, nextToken: 1,
    propertyStatus: opts.propertyStatus ?? OK, httpCallStatus: opts.httpCallStatus ?? OK,
  };
  let inst;
  const mem = () => new DataView(inst.exports.memory.buffer);
  const bytesAt = (p, n) => new Uint8Array(inst.exports.memory.buffer, p, n).slice();
  const str = (p, n) => dec.decode(bytesAt(p, n));
  const inBounds = (p, n) => p + n <= inst.exports.memory.buffer.byteLength;
  const ctx = () => (st.effective ?? st.current);
  const out = (line) => console.log('    ' + line);
  // Returns data the way the ABI says: guest malloc(len), ptr and len into the slots.
  function give(data, retPtr, retLen) {
    if (!inBounds(retPtr, 4) || !inBounds(retLen, 4)) return INVALID_MEMORY_ACCESS;
    let p = 0;
    if (data.length) { p = inst.exports.malloc(data.length); new Uint8Array(inst.exports.memory.buffer, p, data.length).set(data); }
    mem().setUint32(retPtr, p, true);
    mem().setUint32(retLen, data.length, true);
    return OK;
  }
  function pairs(p, n) {
    if (n === 0) return [];
    const v = mem(); const count = v.getUint32(p, true);
    const r = []; let d = p + 4 + count * 8;
    for (let i = 0; i < count; i++) {
      const kl = v.getUint32(p + 4 + i * 8, true), vl = v.getUint32(p + 8 + i * 8, true);
      r.push([str(d, kl), str(d + kl + 1, vl)]); d += kl + vl + 2;
    }
    return r;
  }
  const map = (type) => {
    if (type === 6) return st.callResponse ?? [];
    const key = `${ctx()}:${type}`;
    if (!st.maps.has(key)) st.maps.set(key, []);
    return st.maps.get(key);
  };
  const env = {
    proxy_log(level, p, n) {
      if (level !== 1 || SHOW_DEBUG) out(`proxy_log(${LEVELS[level]}, ${JSON.stringify(str(p, n))})`);
      return OK;
    },
    proxy_get_property(p, n, retPtr, retLen) {
      const name = str(p, n);
      let status = st.propertyStatus;
      if (status === OK && name === 'plugin_root_id') status = give(enc.encode(st.rootId), retPtr, retLen);
      else if (status === OK) status = NOT_FOUND;
      out(`proxy_get_property(${JSON.stringify(name)}) [ctx ${ctx()}] -> ${status}${status === OK ? ` ${JSON.stringify(st.rootId)}` : ''}`);
      return status;
    },
    proxy_get_buffer_bytes(type, start, len, retPtr, retLen) {
      const data = type === 7 ? st.config.subarray(start, start + len) : new Uint8Array(0);
      const status = give(data, retPtr, retLen);
      out(`proxy_get_buffer_bytes(${type}, ${start}, ${len}, ret_ptr=${retPtr}, ret_len=${retLen}) [ctx ${ctx()}] -> ${status}`);
      return status;
    },
    proxy_get_header_map_value(type, kp, kn, retPtr, retLen) {
      const key = str(kp, kn);
      const hit = map(type).find(([k]) => k === key);
      const status = hit ? give(enc.encode(hit[1]), retPtr, retLen) : NOT_FOUND;
      out(`proxy_get_header_map_value(${type}, ${JSON.stringify(key)}) [ctx ${ctx()}] -> ${status}${hit ? ` ${JSON.stringify(hit[1])}` : ''}`);
      return status;
    },
    proxy_add_header_map_value(type, kp, kn, vp, vn) {
      const k = str(kp, kn), v = str(vp, vn);
      map(type).push([k, v]);
      out(`proxy_add_header_map_value(${type}, ${JSON.stringify(k)}, ${JSON.stringify(v)}) [ctx ${ctx()}] -> 0`);
      return OK;
    },
    proxy_set_effective_context(id) {
      st.effective = id;
      out(`proxy_set_effective_context(${id}) -> 0`);
      return OK;
    },
    proxy_continue_stream(type) {
      out(`proxy_continue_stream(${type}) [ctx ${ctx()}] -> 0`);
      return OK;
    },
    proxy_send_local_response(code, dp, dn, bp, bn, hp, hn, grpc) {
      out(`proxy_send_local_response(${code}, details=${JSON.stringify(str(dp, dn))} (len ${dn}), body=${JSON.stringify(str(bp, bn))}, ` +
        `headers=${JSON.stringify(pairs(hp, hn))} (len ${hn}), grpc_status=${grpc}) [ctx ${ctx()}] -> 0`);
      return OK;
    },
    proxy_http_call(up, un, hp, hn, bp, bn, tp, tn, timeout, retToken) {
      const status = st.httpCallStatus;
      const token = st.nextToken++;
      if (status === OK) mem().setUint32(retToken, token, true);
      out(`proxy_http_call(${JSON.stringify(str(up, un))}, headers=${JSON.stringify(pairs(hp, hn))} (len ${hn}), body len ${bn}, ` +
        `trailers=${JSON.stringify(pairs(tp, tn))} (len ${tn}), timeout=${timeout}) [ctx ${ctx()}] -> ${status}${status === OK ? `, token ${token}` : ''}`);
      return status;
    },
  };
  const imports = { env: {}, wasi_unstable: {
    proc_exit(code) { out(`wasi_unstable.proc_exit(${code})  => host traps`); throw new ProcExit(`proc_exit(${code})`); },
  } };
  for (const im of WebAssembly.Module.imports(new WebAssembly.Module(bytes))) {
    if (im.module !== 'env') continue;
    imports.env[im.name] = env[im.name] ?? (() => { throw new Error(`unimplemented ${im.name}`); });
  }
  inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), imports);
  out('(instantiated: start section ran, no hostcalls)');
  return {
    st,
    call(name, ...args) {
      st.current = args[0]; st.effective = null;
      console.log(`  ${name}(${args.join(', ')})`);
      try {
        const r = inst.exports[name](...args);
        if (r !== undefined) out(`=> returns ${r}`);
      } catch (e) {
        out(`=> TRAP: ${e instanceof ProcExit ? e.message : `${e.constructor.name}: ${e.message}`}`);
      }
    },
    headers(id, type, list) { st.maps.set(`${id}:${type}`, list); },
  };
}

function scenario(title, fn) { console.log(`\n## ${title}`); fn(); }
const start = (vm, root, configLen) => { vm.call('proxy_on_context_create', root, 0); vm.call('proxy_on_vm_start', root, 0); vm.call('proxy_on_configure', root, configLen); };
const finish = (vm, id) => { vm.call('proxy_on_done', id); vm.call('proxy_on_log', id); vm.call('proxy_on_delete', id); };

scenario('headers.wasm, root id compat_headers, configuration "x-compat-config"', () => {
  const vm = load('headers', { rootId: 'compat_headers', config: 'x-compat-config' });
  start(vm, 1, 15);
  vm.call('proxy_on_context_create', 2, 1);
  vm.headers(2, 0, [[':method', 'GET'], [':path', '/hello?x=1'], [':authority', 'example']]);
  vm.call('proxy_on_request_headers', 2, 3, 1);
  vm.headers(2, 2, [[':status', '200']]);
  vm.call('proxy_on_response_headers', 2, 1, 0);
  finish(vm, 2);
  console.log('  request headers now: ' + JSON.stringify(vm.st.maps.get('2:0')));
  console.log('  response headers now: ' + JSON.stringify(vm.st.maps.get('2:2')));
});

scenario('callout.wasm, root id compat_callout: auth answers 200', () => {
  const vm = load('callout', { rootId: 'compat_callout', config: 'unused' });
  start(vm, 1, 6);
  vm.call('proxy_on_context_create', 2, 1);
  vm.headers(2, 0, [[':method', 'GET'], [':path', '/api'], [':authority', 'example'], ['x-token', 'secret']]);
  vm.call('proxy_on_request_headers', 2, 4, 1);
  vm.st.callResponse = [[':status', '200']];
  vm.call('proxy_on_http_call_response', 1, 1, 1, 0, 0);
  finish(vm, 2);
});

scenario('callout.wasm: auth answers 401 (any :status other than "200")', () => {
  const vm = load('callout', { rootId: 'compat_callout', config: 'unused' });
  start(vm, 1, 6);
  vm.call('proxy_on_context_create', 2, 1);
  vm.headers(2, 0, [[':method', 'GET'], [':path', '/api'], [':authority', 'example'], ['x-token', 'bad']]);
  vm.call('proxy_on_request_headers', 2, 4, 1);
  vm.st.callResponse = [[':status', '401']];
  vm.call('proxy_on_http_call_response', 1, 1, 1, 0, 0);
});

scenario('callout.wasm: no x-token header, callout fails (num_headers 0, no map 6)', () => {
  const vm = load('callout', { rootId: 'compat_callout', config: 'unused' });
  start(vm, 1, 6);
  vm.call('proxy_on_context_create', 2, 1);
  vm.headers(2, 0, [[':method', 'GET'], [':path', '/api'], [':authority', 'example']]);
  vm.call('proxy_on_request_headers', 2, 3, 1);
  vm.st.callResponse = null;
  vm.call('proxy_on_http_call_response', 1, 1, 0, 0, 0);
});

scenario('callout.wasm: proxy_http_call returns BAD_ARGUMENT (2)', () => {
  const vm = load('callout', { rootId: 'compat_callout', config: 'unused', httpCallStatus: BAD_ARGUMENT });
  start(vm, 1, 6);
  vm.call('proxy_on_context_create', 2, 1);
  vm.headers(2, 0, [[':method', 'GET'], [':path', '/api'], [':authority', 'example']]);
  vm.call('proxy_on_request_headers', 2, 3, 1);
});

scenario('callout.wasm: response for an unknown token / for the stream id instead of the root id', () => {
  const vm = load('callout', { rootId: 'compat_callout', config: 'unused' });
  start(vm, 1, 6);
  vm.call('proxy_on_context_create', 2, 1);
  vm.headers(2, 0, [[':method', 'GET'], [':path', '/api'], [':authority', 'example']]);
  vm.call('proxy_on_request_headers', 2, 3, 1);
  vm.st.callResponse = [[':status', '200']];
  vm.call('proxy_on_http_call_response', 1, 99, 1, 0, 0);
  vm.call('proxy_on_http_call_response', 2, 1, 1, 0, 0);
});

scenario('local-reply.wasm, root id compat_local: GET /deny, then GET /ok', () => {
  const vm = load('local-reply', { rootId: 'compat_local', config: 'unused' });
  start(vm, 1, 6);
  vm.call('proxy_on_context_create', 2, 1);
  vm.headers(2, 0, [[':method', 'GET'], [':path', '/deny'], [':authority', 'example']]);
  vm.call('proxy_on_request_headers', 2, 3, 1);
  vm.call('proxy_on_context_create', 3, 1);
  vm.headers(3, 0, [[':method', 'GET'], [':path', '/ok'], [':authority', 'example']]);
  vm.call('proxy_on_request_headers', 3, 3, 1);
});

scenario('failure modes (headers.wasm)', () => {
  console.log('  -- plugin_root_id answers NOT_FOUND (1):');
  let vm = load('headers', { rootId: 'compat_headers', propertyStatus: NOT_FOUND });
  vm.call('proxy_on_context_create', 1, 0);
  console.log('  -- plugin_root_id is a root id nobody registered:');
  vm = load('headers', { rootId: 'other' });
  vm.call('proxy_on_context_create', 1, 0);
  console.log('  -- proxy_on_vm_start / proxy_on_request_headers before proxy_on_context_create:');
  vm = load('headers', { rootId: 'compat_headers' });
  vm.call('proxy_on_vm_start', 1, 0);
  vm.call('proxy_on_request_headers', 2, 0, 1);
  console.log('  -- empty configuration (configuration_size 0):');
  vm = load('headers', { rootId: 'compat_headers', config: '' });
  start(vm, 1, 0);
  console.log('  -- reconfigure after a request whose :path was missing (stale size slot is 0):');
  vm = load('headers', { rootId: 'compat_headers', config: 'first' });
  start(vm, 1, 5);
  vm.call('proxy_on_context_create', 2, 1);
  vm.headers(2, 0, [[':path', '']]);
  vm.call('proxy_on_request_headers', 2, 1, 1);
  vm.st.config = enc.encode('second');
  vm.call('proxy_on_configure', 1, 6);
});
