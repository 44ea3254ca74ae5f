import persisted from './generated/persisted-documents.json' with { type: 'json' };

const manifest: Record<string, string> = persisted;

/** A typed document as the client preset generates it: its text, and its manifest hash in `__meta__`. */
export interface PersistedDocument {
  __meta__?: Record<string, unknown>;
  toString(): string;
}

/** The fields of a request that name its document, over HTTP and WebSocket alike. */
export interface DocumentFields {
  query: string;
  extensions?: { persistedQuery: { version: 1; sha256Hash: string } };
}

/**
 * The document's manifest text (the exact text its hash is of; the generated document is formatted differently) and
 * its sha256 as Apollo's persisted-query extension, so that the request passes a server that runs only the trusted
 * documents of this package, whichever of the two it checks.
 */
export function documentFields(document: PersistedDocument): DocumentFields {
  const hash = typeof document.__meta__?.hash === 'string' ? document.__meta__.hash : undefined;
  const text = hash ? manifest[hash] : undefined;
  if (!hash || text === undefined) return { query: document.toString() };
  return { query: text, extensions: { persistedQuery: { version: 1, sha256Hash: hash } } };
}
