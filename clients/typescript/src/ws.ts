import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
import { type Client, type ClientOptions, createClient } from 'graphql-ws';

import type { VaultError } from './errors.js';
import { type PersistedDocument, documentFields } from './persisted.js';

/**
 * Every close code `/graphql/ws` sends (docs/websocket.md). Some codes have several reasons: match the reason's first
 * words too ([`closeAdvice`] does).
 */
export const CloseCode = {
  /** After the client's `connection_terminate` (legacy protocol only). */
  NormalClosure: 1000,
  /** The server is shutting down: reconnect (another replica answers) and resume. */
  GoingAway: 1001,
  /** A message larger than 64 KiB: a client bug, do not resend. */
  MessageTooBig: 1009,
  /** The token issuer's keys could not be fetched yet: reconnect with back-off, same token. */
  TryAgainLater: 1013,
  /** No message from the client for 60 s: reconnect, and keep `keepAlive` pings on. */
  KeepAliveTimeout: 3008,
  /** A malformed or unknown message: a client bug. */
  BadRequest: 4400,
  /** `Unauthorized` (a message before `connection_ack`) or `Token expired` (refresh the token, resume). */
  Unauthorized: 4401,
  /** `Forbidden: <detail>` (token refused), `Token revoked`, or `Forbidden` (access grants shrank). */
  Forbidden: 4403,
  /** No `connection_init` within 5 s. */
  ConnectionInitialisationTimeout: 4408,
  /** A `subscribe` with the id of a running subscription: a client bug. */
  SubscriberAlreadyExists: 4409,
  /** `Rate limited`, `Too many sockets`, `Too many subscriptions` or `Too many initialisation requests`. */
  TooManyRequests: 4429,
} as const;

export type CloseCodeName = keyof typeof CloseCode;

/** What a client should do after a close, per docs/websocket.md. */
export type CloseAction =
  /** Nothing: the close was asked for. */
  | 'done'
  /** Reconnect with back-off and resume from the last cursor. */
  | 'reconnect'
  /** Get a fresh token, then reconnect and resume. */
  | 'refresh-token'
  /** The token is refused or revoked: sign in again; never reconnect with it. */
  | 'sign-in'
  /** Over a limit (`RATE_LIMITED` on the socket, too many sockets): wait a few seconds, then reconnect. */
  | 'back-off'
  /** Access was withdrawn: stop until it is granted again. */
  | 'stop'
  /** The client sent something wrong: a bug to fix, retrying will not help. */
  | 'client-bug';

export interface CloseAdvice {
  code: number;
  /** The name of the code in [`CloseCode`], when the server has one. */
  name?: CloseCodeName;
  reason: string;
  action: CloseAction;
}

/** Names a close and says what to do about it. */
export function closeAdvice(event: { code: number; reason?: string }): CloseAdvice {
  const reason = event.reason ?? '';
  const name = (Object.keys(CloseCode) as CloseCodeName[]).find((key) => CloseCode[key] === event.code);
  return { code: event.code, ...(name ? { name } : {}), reason, action: actionFor(event.code, reason) };
}

function actionFor(code: number, reason: string): CloseAction {
  switch (code) {
    case CloseCode.NormalClosure:
      return 'done';
    case CloseCode.GoingAway:
    case CloseCode.TryAgainLater:
    case CloseCode.KeepAliveTimeout:
    case CloseCode.ConnectionInitialisationTimeout:
      return 'reconnect';
    case CloseCode.Unauthorized:
      return reason.startsWith('Token expired') ? 'refresh-token' : 'client-bug';
    case CloseCode.Forbidden:
      // Bare `Forbidden`: the grants shrank; `Forbidden: <detail>` and `Token revoked`: the token is no good.
      return reason === 'Forbidden' ? 'stop' : 'sign-in';
    case CloseCode.TooManyRequests:
      return reason.startsWith('Rate limited') || reason.startsWith('Too many sockets') ? 'back-off' : 'client-bug';
    default:
      // 1009, 4400, 4409, and codes this package does not know.
      return code >= 4000 || code === CloseCode.MessageTooBig ? 'client-bug' : 'reconnect';
  }
}

/** Where the socket goes and who opens it. */
export interface VaultSocketOptions {
  /** e.g. `wss://vault.example.com/graphql/ws`. */
  url: string;
  /** The bearer token, read again on every (re)connection so that a refreshed one is sent. */
  token: () => string | Promise<string>;
  /** A WebSocket implementation where there is no global one (Node.js 20: the `ws` package). */
  webSocketImpl?: unknown;
  /** Told of every close, named, with what to do (graphql-ws has already reconnected on `reconnect`). */
  onClose?: (advice: CloseAdvice) => void;
  /** Anything else graphql-ws takes. */
  graphqlWs?: Partial<ClientOptions>;
}

/**
 * A graphql-ws client for `/graphql/ws`: the token in `connection_init`, pings every 30 s (the server closes a silent
 * socket after 60 s), and automatic reconnection only for the closes that call for it.
 */
export function createVaultSocket(options: VaultSocketOptions): Client {
  return createClient({
    url: options.url,
    connectionParams: async () => ({ authorization: `Bearer ${await options.token()}` }),
    keepAlive: 30_000,
    retryAttempts: 10,
    // graphql-ws already gives up on 4400, 4401, 4409 and 4429; this also stops on a refused or revoked token.
    shouldRetry: (event) => !isCloseEvent(event) || closeAdvice(event).action === 'reconnect',
    on: {
      closed: (event) => {
        if (isCloseEvent(event)) options.onClose?.(closeAdvice(event));
      },
    },
    ...(options.webSocketImpl ? { webSocketImpl: options.webSocketImpl } : {}),
    ...options.graphqlWs,
  });
}

function isCloseEvent(value: unknown): value is { code: number; reason: string } {
  return typeof value === 'object' && value !== null && 'code' in value && 'reason' in value;
}

/** One result of a subscription: data, or the errors of a refused operation (e.g. `CURSOR_EXPIRED`). */
export interface SubscriptionResult<TData> {
  data?: TData | null;
  errors?: ReadonlyArray<VaultError>;
}

/**
 * Runs a typed subscription; iterate it with `for await`, and `return()` it (or `break`) to unsubscribe. A close that
 * ends it throws its [`CloseAdvice`]. Like `execute`, it sends the manifest text and hash of its document, so it
 * passes a server that runs only trusted documents.
 */
export function subscribe<TResult, TVariables>(
  socket: Client,
  document: DocumentTypeDecoration<TResult, TVariables> & PersistedDocument,
  variables: TVariables,
): AsyncIterableIterator<SubscriptionResult<TResult>> {
  const iterator = socket.iterate<TResult>({
    ...documentFields(document),
    variables: variables as Record<string, unknown>,
  });
  return {
    async next() {
      try {
        return (await iterator.next()) as IteratorResult<SubscriptionResult<TResult>>;
      } catch (error) {
        throw isCloseEvent(error) ? closeAdvice(error) : error;
      }
    },
    return: async () => (await iterator.return?.()) ?? { done: true, value: undefined },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
