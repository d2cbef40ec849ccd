export type RequestTarget =
  | { ok: true; host: string; path: string }
  | { ok: false; message: string };

/**
 * Where a request goes (RFC 9112 §3.2): an absolute-form target (`GET http://a.b/x`) is routed by
 * its authority and forwarded in origin form; otherwise the single Host header. Two Host lines
 * are refused (a proxy and the machine could each pick a different one). `hosts` holds the value
 * of every Host line.
 */
export function targetOf(url: string, hosts: readonly string[]): RequestTarget {
  if (hosts.length > 1) return { ok: false, message: 'the request has more than one Host header' };
  if (url.charCodeAt(0) !== 47 /* '/' */ && /^https?:\/\//i.test(url)) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return { ok: false, message: `the request target ${url} is not a valid absolute URL` };
    }
    return { ok: true, host: parsed.host, path: `${parsed.pathname}${parsed.search}` };
  }
  const host = hosts[0];
  if (!host) return { ok: false, message: 'the request has no Host header' };
  return { ok: true, host, path: url };
}
