import Long from 'long';

/**
 * The wire messages as typed static code, generated from proto/*.proto at build time
 * (`npm run generate:proto`: pbjs, then pbts for the types), so a field that does not match the
 * .proto is a type error. generated/ sits beside src/ and dist/: one relative path serves both.
 */
export { corrosion as wire } from '../../generated/wire.js';

/** A 64-bit field: a Long as decoded (protobufjs has `long`), a number as given to the encoder. */
export type Int64 = number | { toNumber(): number; toString(): string };

export const int64Number = (value: Int64 | null | undefined): number =>
  value == null ? 0 : typeof value === 'number' ? value : value.toNumber();

/** A BigInt for a 64-bit field (the encoder takes a Long; a number would lose bits past 2^53). */
export const int64FromBigInt = (value: bigint) => Long.fromString(String(value));
