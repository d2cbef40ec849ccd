import type { ServerOptions, Settings } from 'node:http2';

/** Bytes a field counts toward a field section's size (RFC 9113 §6.5.2): name, value, 32. */
const fieldOverheadBytes = 32;

/**
 * The options of every HTTP/2 server of the proxy (h2c, h2 over TLS, a backhaul's), bounding
 * request heads as the HTTP/1.1 relay does (`--header-bytes-max`).
 *
 * Node enforces SETTINGS_MAX_HEADER_LIST_SIZE itself: a stream whose field section is larger is
 * reset (ENHANCE_YOUR_CALM) before any JavaScript sees it, so nothing could answer or count it.
 * The setting is therefore twice the proxy's bound: a section over the bound still reaches the
 * relay, which answers 431 `PROXY_ERR_HEADERS_TOO_LARGE` as the HTTP/1.1 relay does
 * (`fieldSectionBytes`), and only a section over twice the bound is reset by Node — what bounds
 * the memory one stream's headers can take. Node's own default of 128 fields per section is
 * raised so that the bytes, not the count, are the bound (HTTP/1.1 has no count either).
 */
export function http2ServerOptions(headBytesMax: number, settings: Settings = {}): ServerOptions {
  const sectionBytesMax = headBytesMax * 2;
  return {
    maxHeaderListPairs: Math.ceil(sectionBytesMax / fieldOverheadBytes),
    settings: { ...settings, maxHeaderListSize: sectionBytesMax },
  };
}

/** The size of a request's field section as RFC 9113 counts it, from the stream's raw headers. */
export function fieldSectionBytes(rawHeaders: readonly string[]): number {
  let bytes = 0;
  for (const [index, field] of rawHeaders.entries())
    bytes += field.length + (index % 2 === 0 ? fieldOverheadBytes : 0);
  return bytes;
}
