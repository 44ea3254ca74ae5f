import { CredentialChangedDocument, type CredentialChangedSubscription } from './generated/graphql.js';
import { type CloseAdvice, type VaultSocketOptions, createVaultSocket, subscribe } from './ws.js';

/** One entry of the `credentialChanged` feed. */
export type FollowedChange = CredentialChangedSubscription['credentialChanged'];

export interface FollowOptions extends VaultSocketOptions {
  /** Only this seller's changes. */
  sellerLogin?: string;
  /** Start after this cursor (a tool's last one, kept across its restarts); by default, from now on. */
  after?: string;
  /** The first wait before reconnecting, in ms (default 1000), doubled on each failed try up to 30 s. */
  backoffMs?: number;
}

export interface FollowHandlers {
  /** Each change, in commit order, none lost across reconnections. */
  next: (change: FollowedChange) => void;
  /**
   * The resume cursor was older than the changes the server keeps (`CURSOR_EXPIRED`): some were missed. Read the
   * credentials again; following goes on from now.
   */
  expired?: () => void | Promise<void>;
  /**
   * Following stopped for good: a close that needs a person (`sign-in`, `stop`, `client-bug`), or errors in an
   * answer (`FORBIDDEN`, ...). Nothing reconnects after this.
   */
  stopped?: (why: CloseAdvice | ReadonlyArray<unknown> | unknown) => void;
}

export interface Following {
  /** The cursor of the last change delivered, to keep for a later `after`. */
  cursor(): string | undefined;
  /** Stops following and closes the socket. */
  stop(): Promise<void>;
}

const RESUMABLE = new Set(['reconnect', 'refresh-token', 'back-off']);

/**
 * Follows `credentialChanged` across disconnections: after a close that calls for it (a deploy, an expired token,
 * a rate limit, a network failure), it reconnects with back-off, the token read again, and resumes from the last
 * cursor, so no change is lost. graphql-ws's own reconnection would resubscribe with the first variables instead:
 * this helper owns its socket and turns that off.
 */
export function followCredentialChanges(options: FollowOptions, handlers: FollowHandlers): Following {
  const socket = createVaultSocket({ ...options, graphqlWs: { ...options.graphqlWs, retryAttempts: 0 } });
  const base = options.backoffMs ?? 1000;
  let cursor = options.after;
  let stopped = false;
  let current: AsyncIterator<unknown> | undefined;
  let wake: (() => void) | undefined;

  const stop = (why?: unknown) => {
    if (!stopped && why !== undefined) handlers.stopped?.(why);
    stopped = true;
    wake?.();
  };
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      wake = resolve;
      setTimeout(resolve, ms);
    });

  const run = async () => {
    let delay = base;
    while (!stopped) {
      const variables = { sellerLogin: options.sellerLogin ?? null, after: cursor ?? null };
      const changes = subscribe(socket, CredentialChangedDocument, variables);
      current = changes;
      try {
        for await (const result of changes) {
          const code = result.errors?.[0]?.extensions?.code;
          if (code === 'CURSOR_EXPIRED') {
            cursor = undefined;
            await handlers.expired?.();
            delay = 0;
          } else if (result.errors?.length) {
            stop(result.errors);
          } else if (result.data) {
            cursor = result.data.credentialChanged.cursor;
            delay = base;
            handlers.next(result.data.credentialChanged);
          }
          if (stopped || code === 'CURSOR_EXPIRED') break;
        }
      } catch (error) {
        const advice = error as Partial<CloseAdvice>;
        // A socket that failed to open at all (no close code) is worth another try too.
        if (typeof advice.action === 'string' && !RESUMABLE.has(advice.action)) stop(error);
      }
      if (stopped) break;
      // The server ended the subscription (a close, or a completion just before one): resume after a pause.
      await pause(delay);
      delay = Math.min(Math.max(delay * 2, base), 30_000);
    }
  };
  const running = run();

  return {
    cursor: () => cursor,
    async stop() {
      stop();
      await current?.return?.();
      await running;
      await socket.dispose();
    },
  };
}
