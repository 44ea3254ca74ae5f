import { ERROR_CODES, type ErrorCode } from './generated/error-codes.js';

export { ERROR_CODES, type ErrorCode };

/** A GraphQL error as cdvault sends it: a stable `extensions.code`, often a `reason` and a `field`. */
export interface VaultError {
  message: string;
  path?: ReadonlyArray<string | number>;
  extensions?: {
    code?: ErrorCode;
    reason?: string;
    field?: string;
    requestId?: string;
    [key: string]: unknown;
  };
}

/** Whether `value` is a code of the registry (a newer server may send one this package does not know yet). */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/** The codes of `errors`, in order, without the unknown ones. */
export function errorCodes(errors: ReadonlyArray<VaultError> | undefined): ErrorCode[] {
  return (errors ?? []).map((error) => error.extensions?.code).filter(isErrorCode);
}
