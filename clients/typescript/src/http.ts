import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';

import { type ErrorCode, type VaultError, errorCodes } from './errors.js';
import { type PersistedDocument, documentFields } from './persisted.js';

/** Where the vault is and who calls it. */
export interface VaultHttpOptions {
  /** The GraphQL endpoint, e.g. `https://vault.example.com/graphql`. */
  url: string;
  /** The bearer token, read again for every request (so a refreshed one is used). */
  token: () => string | Promise<string>;
  /**
   * How many times a request refused with `RATE_LIMITED` (HTTP 429) is sent again after waiting its
   * `Retry-After`; 0 (the default) hands the refusal to the caller at once.
   */
  rateLimitRetries?: number;
  /** A longer `Retry-After` than this (seconds; default 10) is not waited for, whatever `rateLimitRetries` says. */
  maxRetryAfterSeconds?: number;
  /** `fetch` to use (the global one by default). */
  fetch?: typeof fetch;
}

/** A GraphQL answer, with the HTTP facts a caller needs to handle refusals. */
export interface VaultResult<TData> {
  data?: TData | null;
  errors?: VaultError[];
  /** The HTTP status: 200 for answered operations (errors included), 401, 413, 429 ... for refused requests. */
  status: number;
  /** The codes of `errors`, in order. */
  codes: ErrorCode[];
  /** With `RATE_LIMITED`: seconds to wait before trying again (the `Retry-After` header). */
  retryAfterSeconds?: number;
}

type Document<TResult, TVariables> = DocumentTypeDecoration<TResult, TVariables> & PersistedDocument;

/**
 * Sends one operation over HTTP. The request carries the document's manifest text and its sha256 (Apollo's
 * `persistedQuery` extension), so it passes a server that accepts only the trusted documents of this package.
 */
export async function execute<TResult, TVariables>(
  options: VaultHttpOptions,
  document: Document<TResult, TVariables>,
  ...[variables]: TVariables extends Record<string, never> ? [] | [TVariables] : [TVariables]
): Promise<VaultResult<TResult>> {
  const send = options.fetch ?? fetch;
  const body = JSON.stringify({ ...documentFields(document), variables: variables ?? {} });
  for (let attempt = 0; ; attempt++) {
    const response = await send(options.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        authorization: `Bearer ${await options.token()}`,
      },
      body,
    });
    const result = await readResult<TResult>(response);
    const wait = result.retryAfterSeconds;
    const retry =
      result.codes.includes('RATE_LIMITED') &&
      wait !== undefined &&
      attempt < (options.rateLimitRetries ?? 0) &&
      wait <= (options.maxRetryAfterSeconds ?? 10);
    if (!retry) return result;
    await new Promise((resolve) => setTimeout(resolve, wait * 1000));
  }
}

async function readResult<TResult>(response: Response): Promise<VaultResult<TResult>> {
  let payload: { data?: TResult | null; errors?: VaultError[] };
  try {
    payload = (await response.json()) as typeof payload;
  } catch {
    // Not GraphQL at all (a proxy's error page): say so with the status.
    payload = { errors: [{ message: `HTTP ${response.status} without a GraphQL body` }] };
  }
  const retryAfter = Number.parseInt(response.headers.get('retry-after') ?? '', 10);
  return {
    data: payload.data,
    errors: payload.errors,
    status: response.status,
    codes: errorCodes(payload.errors),
    ...(Number.isFinite(retryAfter) ? { retryAfterSeconds: retryAfter } : {}),
  };
}
