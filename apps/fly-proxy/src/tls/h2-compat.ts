import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { RequestHandler } from './listeners.js';

/**
 * Lets a relay written for HTTP/1.1 serve HTTP/2 requests too, until it handles them natively:
 * an h2 request's `headers` become a copy without the pseudo-headers (`:method`, `:path`,
 * `:scheme`, `:authority` — still on `method`, `url`, `scheme` and `authority`; an HTTP/1.1
 * upstream would refuse them as header names), with `:authority` as `host` when it has none.
 * HTTP/1.1 requests pass untouched.
 */
export function withHttp1Headers(
  handler: (request: IncomingMessage, response: ServerResponse) => void,
): RequestHandler {
  return (request, response) => {
    if (request.httpVersionMajor === 2) {
      // A copy, shadowing the prototype's getter: Node's `url` and `method` read the pseudo-
      // headers from the original object, which must keep them.
      const headers: Record<string, string | string[] | undefined> = {};
      for (const [name, value] of Object.entries(request.headers)) {
        if (!name.startsWith(':')) headers[name] = value;
      }
      const authority = (request as Http2ServerRequest).authority;
      if (headers.host === undefined && authority) headers.host = authority;
      Object.defineProperty(request, 'headers', { value: headers, configurable: true });
    }
    // The HTTP/2 compat objects have the members a relay uses (headers, method, url, socket, the
    // body streams; setHeader, writeHead, end, headersSent, 'close'); the README lists where
    // they differ (no hop-by-hop headers may be written to an h2 response).
    handler(request as IncomingMessage, response as ServerResponse);
  };
}
