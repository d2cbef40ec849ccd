import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/**
 * Loads a .proto file of the app's proto/ folder (beside src/ and dist/, so one relative path
 * serves both). keepCase: fields keep their .proto snake_case names, as on the wire.
 */
export function loadProto(file: string): protobuf.Root {
  return new protobuf.Root().loadSync(
    fileURLToPath(new URL(`../../proto/${file}`, import.meta.url)),
    { keepCase: true },
  );
}
