/**
 * The smallest StreamHost the data plane could hand the VM for one request: a request header map
 * and nothing else. Unlike test/helpers' TestStream it records nothing, so the benchmark measures
 * the ABI host and not the test double.
 */
import { Direction, Status } from '../../gateway/abi/enums.js';
import type { HeaderMap } from '../../gateway/abi/header-map.js';
import type { BodyBuffer } from '../../gateway/abi/body-buffer.js';
import type { StreamMap } from '../../gateway/abi/map-types.js';
import type { LocalResponse, StreamHost } from '../../gateway/abi/ports.js';

export class BenchStream implements StreamHost {
  constructor(readonly requestHeaders: HeaderMap) {}

  headerMap(map: StreamMap): HeaderMap | null {
    return map.direction === Direction.REQUEST && !map.trailers ? this.requestHeaders : null;
  }
  body(): BodyBuffer | null {
    return null;
  }
  property(): Uint8Array | undefined {
    return undefined;
  }
  setProperty(): Status {
    return Status.NOT_FOUND;
  }
  continueStream(): void {}
  closeStream(): void {}
  sendLocalResponse(_response: LocalResponse): void {}
}

/** A realistic browser → API request: 15 headers, ~1.3 KB, with a cookie and an RS256 bearer token. */
export function requestHeaders(): Array<[string, string]> {
  // A deterministic base64url "signature" of RS256 length (256 bytes → 342 characters).
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  let signature = '';
  for (let i = 0, s = 7; i < 342; i++) signature += alphabet[(s = (s * 1103515245 + 12345) >>> 0) % 64];
  const jwt = 'eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImJlbmNoLWtleS0xIn0'
    + '.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUgRG9lIiwiaXNzIjoiaHR0cHM6Ly9hdXRoLmV4YW1wbGUuY29tIiwiYXVkIjoiYXBpLmV4YW1wbGUuY29tIiwiaWF0IjoxNzE2MjM5MDIyLCJleHAiOjE3MTYyNDI2MjJ9'
    + '.' + signature;
  return [
    [':method', 'GET'],
    [':path', '/api/v2/orders/8c1f6a2e-3b7d-4c1e-9f0a-2d6b5e8c7a41/items?limit=50&cursor=eyJpZCI6MTIzNH0'],
    [':authority', 'api.example.com'],
    [':scheme', 'https'],
    ['user-agent', 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36'],
    ['accept', 'application/json, text/plain, */*'],
    ['accept-encoding', 'gzip, deflate, br, zstd'],
    ['accept-language', 'en-US,en;q=0.9,fr;q=0.8'],
    ['cookie', 'session=s%3A9f8e7d6c5b4a3928.Xk2Lm9Qp7Rt4Vw1Yz3Ab5Cd7Ef9Gh; _ga=GA1.2.1234567890.1700000000; theme=dark; csrftoken=Zq8Wn3Tr6Yu1Io4Pa7Sd0Fg2Hj5Kl9X'],
    ['x-request-id', '6f9b3c1e-2a4d-4f8b-9c7e-1d2e3f4a5b6c'],
    ['x-forwarded-for', '203.0.113.7, 198.51.100.23'],
    ['content-type', 'application/json'],
    ['authorization', `Bearer ${jwt}`],
    ['cache-control', 'no-cache'],
    ['referer', 'https://app.example.com/orders/8c1f6a2e-3b7d-4c1e-9f0a-2d6b5e8c7a41'],
  ];
}
