import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { RequestHandler } from './listeners.js';

/**
 * Lets a relay written for HTTP/1.1 serve HTTP/2 requests too, until it handles them natively:
 * an h2 request's `:authority` becomes its `host` header (when it has none) and the pseudo-headers
 * (`:method`, `:path`, `:scheme`, `:authority`) leave `headers` — they are still on `method`,
 * `url`, `scheme` and `authority`, and an HTTP/1.1 upstream would refuse them as header names.
 * HTTP/1.1 requests pass untouched.
 */
export function withHttp1Headers(
  handler: (request: IncomingMessage, response: Parameters<RequestHandler>[1]) => void,
): RequestHandler {
  return (request, response) => {
    if (request.httpVersionMajor === 2) {
      const headers = request.headers;
      const authority = (request as Http2ServerRequest).authority;
      if (headers.host === undefined && authority) headers.host = authority;
      for (const name of Object.keys(headers)) {
        if (name.startsWith(':')) delete headers[name];
      }
    }
    // Safe: the HTTP/2 compat request has every IncomingMessage member a relay reads (headers,
    // method, url, socket, the Readable body); the differences are listed in the README.
    handler(request as IncomingMessage, response);
  };
}
