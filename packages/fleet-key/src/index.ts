export { FleetKeyError, type FleetKeyErrorCode, FleetKeyErrors } from './errors.js';
export { fleetKeyFileSetting, fleetKeyOfFlag } from './flag.js';
export { fleetKeyBytesMin, readFleetKeyFile } from './fleet-key.js';
export { openSealed, sealSecret } from './seal.js';
export { appSecretContext, secretDigest } from './secret-digest.js';
