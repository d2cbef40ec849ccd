// @peculiar/x509 2.x resolves its services through tsyringe, which needs the Reflect metadata
// polyfill loaded first; importing the library only through this file keeps that order.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto);

export { x509 };

/** ECDSA P-256 with SHA-256: what the fleet CA and every leaf use. */
export const ecdsaP256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
