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
  if (!hostSyntax.test(host)) {
    return {
      ok: false,
      message: `the Host header ${JSON.stringify(host)} is not a host name or address with an optional port`,
    };
  }
  return { ok: true, host, path: url };
}

/**
 * A Host value as RFC 9110 §7.2 has it (RFC 9112 §3.2: anything else is a 400): a reg-name of
 * RFC 3986 (letters, digits, `-._~`, sub-delims, percent-encoding) or a bracketed IP literal,
 * then an optional port of digits. `web.fleet.test, other` or `web.fleet.test:abc` were a 404
 * "no app answers", as if they were names.
 */
const hostSyntax = /^(?:\[[0-9A-Fa-f:.]+\]|[\w\-.~!$&'()*+,;=%]*)(?::\d*)?$/;
