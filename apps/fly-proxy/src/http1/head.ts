/**
 * Strict HTTP/1.x message heads (RFC 9112), parsed by the relay itself so that it frames every
 * message exactly as the machine will: anything two parsers could read differently (request
 * smuggling) is refused instead of guessed at.
 */

/** How a message body is delimited. */
export type Framing =
  | { kind: 'none' }
  | { kind: 'length'; length: number }
  | { kind: 'chunked' }
  /** A response that ends when the machine closes (no length, not chunked). */
  | { kind: 'close' };

export interface Head {
  /** `name: value` pairs as sent, names lowercased; duplicates kept in order. */
  headers: [string, string][];
  minor: 0 | 1;
  framing: Framing;
  /** The lowercased tokens of every Connection header. */
  connection: string[];
}

export interface RequestHead extends Head {
  method: string;
  target: string;
  /** Every Host line's value (more than one is refused by the relay with a clear answer). */
  hosts: string[];
  expectContinue: boolean;
  /** The Upgrade header's value when Connection names `upgrade` (WebSocket). */
  upgrade: string | undefined;
}

export interface ResponseHead extends Head {
  status: number;
  reason: string;
}

/** A head the relay refuses, with the status it answers (400 or 431; 502 for a machine's). */
export class HeadError extends Error {
  constructor(
    readonly status: 400 | 431 | 502,
    message: string,
  ) {
    super(message);
  }
}

// RFC 9110 §5.6.2 tchar, for methods and field names.
const tchar = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible ASCII, obs-text, SP and HTAB (no CR, LF or NUL).
const fieldValue = /^[\t\x20-\x7e\x80-\xff]*$/;
// A whole field block, every line well formed: `name:value` lines joined by CRLF.
const fieldBlock =
  /^(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n)*[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*$/;
// Request targets: no whitespace or control characters.
const targetChars = /^[\x21-\x7e\x80-\xff]+$/;

/** Parses the request head in `text` (latin1, without the final CRLF CRLF). */
export function parseRequestHead(text: string): RequestHead {
  const lineEnd = text.indexOf('\r\n');
  const line = lineEnd < 0 ? text : text.slice(0, lineEnd);
  const first = line.indexOf(' ');
  const second = line.indexOf(' ', first + 1);
  if (first <= 0 || second <= first + 1 || line.indexOf(' ', second + 1) >= 0)
    throw new HeadError(400, 'the request line is not "METHOD target HTTP/1.x"');
  const method = line.slice(0, first);
  const target = line.slice(first + 1, second);
  const version = line.slice(second + 1);
  if (!tchar.test(method)) throw new HeadError(400, 'the request method is not a token');
  if (!targetChars.test(target)) throw new HeadError(400, 'the request target has bad characters');
  const refused = refusedTarget(method, target);
  if (refused !== undefined) throw new HeadError(400, refused);
  const minor = version === 'HTTP/1.1' ? 1 : version === 'HTTP/1.0' ? 0 : -1;
  if (minor < 0) throw new HeadError(400, `the protocol ${version} is not HTTP/1.0 or HTTP/1.1`);
  const head = parseFields(lineEnd < 0 ? '' : text.slice(lineEnd + 2), 400);
  const hosts: string[] = [];
  let expect: string | undefined;
  let upgradeValue: string | undefined;
  for (const [name, value] of head.headers) {
    if (name === 'host') hosts.push(value);
    else if (name === 'expect') expect = value.toLowerCase();
    else if (name === 'upgrade') upgradeValue = value;
  }
  if (minor === 0 && head.chunked)
    throw new HeadError(400, 'an HTTP/1.0 request cannot use Transfer-Encoding');
  if (expect !== undefined && expect !== '100-continue')
    throw new HeadError(400, `the expectation ${expect} is not supported (only 100-continue)`);
  return {
    method,
    target,
    minor: minor as 0 | 1,
    headers: head.headers,
    connection: head.connection,
    hosts,
    expectContinue: expect === '100-continue' && minor === 1,
    upgrade: head.connection.includes('upgrade') ? upgradeValue : undefined,
    framing: head.chunked
      ? { kind: 'chunked' }
      : head.length > 0
        ? { kind: 'length', length: head.length }
        : { kind: 'none' },
  };
}

/**
 * Why a request line's method and target cannot go to a machine (RFC 9112 §3.2), or undefined.
 * A target is a path (origin form), an absolute URL (routed by its authority), or `*` for
 * OPTIONS; anything else would reach the machine for it to read its own way. CONNECT (authority
 * form) asks for a tunnel, which an edge does not open: it routes requests to apps, it is not a
 * forward proxy. For HTTP/1.1 and HTTP/2 alike.
 */
export function refusedTarget(method: string, target: string): string | undefined {
  if (method === 'CONNECT') return 'CONNECT is not relayed to machines';
  if (target.charCodeAt(0) === 47 /* '/' */) return undefined;
  if (target === '*') return method === 'OPTIONS' ? undefined : `* is a target for OPTIONS only`;
  if (/^https?:\/\//i.test(target)) return undefined;
  return `the request target ${target} is not a path, an absolute http(s) URL or * (OPTIONS)`;
}

/**
 * Parses a machine's response head. `method` is the request's: a HEAD answer, 1xx, 204 and 304
 * never have a body, whatever their headers say (RFC 9112 §6.3).
 */
export function parseResponseHead(text: string, method: string): ResponseHead {
  const lineEnd = text.indexOf('\r\n');
  const line = lineEnd < 0 ? text : text.slice(0, lineEnd);
  const status = statusOf(line);
  const head = parseFields(lineEnd < 0 ? '' : text.slice(lineEnd + 2), 502);
  const bodiless = method === 'HEAD' || status < 200 || status === 204 || status === 304;
  return {
    status,
    reason: line.length > 12 ? line.slice(13) : '',
    minor: line.charCodeAt(7) === 49 ? 1 : 0,
    headers: head.headers,
    connection: head.connection,
    framing: bodiless
      ? { kind: 'none' }
      : head.chunked
        ? { kind: 'chunked' }
        : head.length >= 0
          ? head.length === 0
            ? { kind: 'none' }
            : { kind: 'length', length: head.length }
          : { kind: 'close' },
  };
}

/** The status of a status line `HTTP/1.x NNN[ reason]`, read by character (no match object). */
function statusOf(line: string): number {
  const minor = line.charCodeAt(7);
  const hundreds = digitAt(line, 9);
  const tens = digitAt(line, 10);
  const ones = digitAt(line, 11);
  if (
    !line.startsWith('HTTP/1.') ||
    (minor !== 48 && minor !== 49) ||
    line.charCodeAt(8) !== 32 ||
    hundreds < 0 ||
    tens < 0 ||
    ones < 0 ||
    (line.length > 12 && line.charCodeAt(12) !== 32) ||
    !fieldValue.test(line)
  )
    throw new HeadError(502, 'the machine answered a malformed status line');
  return hundreds * 100 + tens * 10 + ones;
}

/** The decimal digit at `at` in `line`, or -1. */
function digitAt(line: string, at: number): number {
  const code = line.charCodeAt(at);
  return code >= 48 && code <= 57 ? code - 48 : -1;
}

interface Fields {
  headers: [string, string][];
  connection: string[];
  chunked: boolean;
  /** -1 without a Content-Length. */
  length: number;
}

/**
 * The field block in one test when every line is well formed (the common case: one regular
 * expression over the block instead of two per line); otherwise line by line, to name the line
 * that is not.
 */
function parseFields(text: string, status: 400 | 502): Fields {
  const headers: [string, string][] = [];
  const connection: string[] = [];
  let chunked = false;
  let codings = 0;
  let length = -1;
  let lengths = 0;
  const checked = text.length === 0 || fieldBlock.test(text);
  for (let from = 0; from < text.length; ) {
    let end = text.indexOf('\r\n', from);
    if (end < 0) end = text.length;
    const colon = checked ? text.indexOf(':', from) : checkedColon(text, from, end, status);
    const name = text.slice(from, colon).toLowerCase();
    const value = trimOws(text, colon + 1, end);
    from = end + 2;
    headers.push([name, value]);
    if (name === 'content-length') {
      lengths += 1;
      length = decimal(value);
      if (length < 0) throw new HeadError(status, `Content-Length ${value} is not a number`);
    } else if (name === 'transfer-encoding') {
      for (const token of listTokens(value, [])) {
        codings += 1;
        // chunked must be the last coding, and once (RFC 9112 §6.1).
        if (chunked) throw new HeadError(status, 'chunked is not the last transfer coding');
        if (token === 'chunked') chunked = true;
      }
    } else if (name === 'connection') listTokens(value, connection);
  }
  if (!checked) throw new HeadError(status, 'the header block is malformed'); // checkedColon throws first
  if (lengths > 1) throw new HeadError(status, 'the message has more than one Content-Length');
  if (codings > 0 && !chunked) {
    // A request's length cannot be known (RFC 9112 §6.3: 400); a response's ends at close.
    if (status === 400) throw new HeadError(400, 'chunked is not the last transfer coding');
    return { headers, connection, chunked: false, length: -1 };
  }
  if (chunked && lengths > 0)
    throw new HeadError(status, 'the message has both Transfer-Encoding and Content-Length');
  return { headers, connection, chunked, length };
}

/** `value` as 1 to 15 decimal digits, read by character; -1 when it is not. */
function decimal(value: string): number {
  if (value.length === 0 || value.length > 15) return -1;
  let number = 0;
  for (let at = 0; at < value.length; at++) {
    const digit = digitAt(value, at);
    if (digit < 0) return -1;
    number = number * 10 + digit;
  }
  return number;
}

/**
 * Adds the lowercased, non-empty elements of a comma-separated list value (Connection,
 * Transfer-Encoding) to `tokens`, trimmed of OWS, and returns `tokens`: by character, as the
 * one-token value (`keep-alive`, `close`) of nearly every message needs no array of parts.
 */
function listTokens(value: string, tokens: string[]): string[] {
  for (let from = 0; from <= value.length; ) {
    let end = value.indexOf(',', from);
    if (end < 0) end = value.length;
    const token = trimOws(value, from, end);
    if (token !== '') tokens.push(token.toLowerCase());
    from = end + 1;
  }
  return tokens;
}

/** The colon of the line `text[from, end)`, or the HeadError saying what is wrong with it. */
function checkedColon(text: string, from: number, end: number, status: 400 | 502): number {
  const colon = text.indexOf(':', from);
  if (colon <= from || colon > end) {
    const first = text.charCodeAt(from);
    const folded = first === 32 || first === 9;
    throw new HeadError(status, folded ? 'a header line is folded' : 'a header line has no name');
  }
  const name = text.slice(from, colon).toLowerCase();
  if (!tchar.test(name)) throw new HeadError(status, `the header name "${name}" is not a token`);
  if (!fieldValue.test(text.slice(colon + 1, end)))
    throw new HeadError(status, `header ${name} has bad characters`);
  return colon;
}

/** `text[from, end)` without the optional whitespace (SP, HTAB) around a field value. */
function trimOws(text: string, from: number, end: number): string {
  let start = from;
  let stop = end;
  while (start < stop && isOws(text.charCodeAt(start))) start += 1;
  while (stop > start && isOws(text.charCodeAt(stop - 1))) stop -= 1;
  return text.slice(start, stop);
}

function isOws(code: number): boolean {
  return code === 32 || code === 9;
}
