/** Error codes of @fleet/catalog; the README lists the same table. */
export const CatalogErrorCodes = {
  CATALOG_ERR_BAD_ROW: 'a row the Catalog cannot use; skipped and counted, never thrown to callers',
  CATALOG_ERR_LOAD_SHED:
    'lazy mode: loadConcurrencyMax loads run and loadQueueMax wait already; the request is refused at once (503)',
  CATALOG_ERR_LOAD_TIMEOUT:
    'lazy mode: the app was not loaded within loadTimeoutMs (queue wait included) (503)',
  CATALOG_ERR_LOAD_FAILED:
    'lazy mode: corrosion failed the load, or too many changes arrived during it (503)',
  CATALOG_ERR_NOT_READY:
    'lazy mode: the change streams are not attached (yet, or again after a reset), so a load could miss changes (503)',
  CATALOG_ERR_ADMISSION_SHED:
    'every candidate is at its hard limit and admissionQueueMax requests of the app already wait (503)',
  CATALOG_ERR_ADMISSION_TIMEOUT:
    'every candidate stayed at its hard limit for admissionTimeoutMs (503)',
} as const;

export type CatalogErrorCode = keyof typeof CatalogErrorCodes;

/** An operating failure the proxy turns into a response (503 for every code but BAD_ROW). */
export class CatalogError extends Error {
  constructor(
    readonly code: CatalogErrorCode,
    message: string,
    readonly app?: string,
  ) {
    super(message);
    this.name = 'CatalogError';
  }
}

/** A row the Catalog could not use; it is skipped and counted, the rest goes on. */
export class BadRowError extends CatalogError {
  constructor(message: string) {
    super('CATALOG_ERR_BAD_ROW', message);
    this.name = 'BadRowError';
  }
}
