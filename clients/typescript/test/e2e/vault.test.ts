// The package against a running cdvault (started by tests/api/typescript_client.rs, which passes its URLs and
// tokens): a typed query, typed mutations answered with error codes, a subscription that hears a change.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import WebSocket from 'ws';

import {
  CredentialChangedDocument,
  FreezeVaultDocument,
  IssueApiCredentialDocument,
  RegisterSellerDocument,
  SellersDocument,
  StoreApiCredentialDocument,
  UnfreezeVaultDocument,
  ViewerDocument,
  createVaultSocket,
  execute,
  followCredentialChanges,
  subscribe,
  type CredentialChangedSubscription,
  type VaultHttpOptions,
} from '../../src/index.js';

function env(name: string): string {
  const value = process.env[name];
  assert.ok(value, `${name} is not set: run this test through tests/api/typescript_client.rs`);
  return value;
}

const SELLER = env('CDVAULT_SELLER');
const admin: VaultHttpOptions = { url: env('CDVAULT_URL'), token: () => env('CDVAULT_ADMIN_TOKEN') };
const purpose = 'typescript client test';

test('a typed query reads the viewer and the sellers its token reaches', async () => {
  const viewer = await execute(admin, ViewerDocument);
  assert.deepEqual(viewer.codes, []);
  assert.equal(viewer.data?.viewer.allSellers, true);
  assert.equal(viewer.data?.viewer.frozen, false);

  const sellers = await execute(admin, SellersDocument, { first: 10 });
  const logins = sellers.data?.sellerAccounts.edges.map((edge) => edge.node.login);
  assert.deepEqual(logins, [SELLER]);
  assert.equal(sellers.data?.sellerAccounts.edges[0]?.node.apiLogin, `${SELLER}-api`);
});

test('typed mutations answer with the error codes of the registry', async () => {
  const again = await execute(admin, RegisterSellerDocument, { input: { login: SELLER, displayName: 'Again' } });
  assert.deepEqual(again.codes, ['CONFLICT']);

  const unknown = await execute(admin, IssueApiCredentialDocument, { sellerLogin: 'nosuchshop', purpose });
  assert.deepEqual(unknown.codes, ['NOT_FOUND']);

  const frozen = await execute(admin, FreezeVaultDocument, { reason: 'drill' });
  assert.equal(frozen.data?.freezeVault.frozen, true);
  const refused = await execute(admin, IssueApiCredentialDocument, { sellerLogin: SELLER, purpose });
  assert.deepEqual([refused.status, refused.codes, refused.data], [200, ['FROZEN'], null]);

  await execute(admin, UnfreezeVaultDocument);
  const issued = await execute(admin, IssueApiCredentialDocument, { sellerLogin: SELLER, purpose });
  assert.deepEqual(issued.codes, []);
  assert.equal(issued.data?.issueApiCredential.apiLogin, `${SELLER}-api`);
});

type Change = CredentialChangedSubscription['credentialChanged'];

test('a subscription hears a credential change, and following resumes from its cursor', async () => {
  const sockets = { url: env('CDVAULT_WS_URL'), token: () => env('CDVAULT_ADMIN_TOKEN'), webSocketImpl: WebSocket };
  const socket = createVaultSocket(sockets);
  const store = async (password: string) => {
    const stored = await execute(admin, StoreApiCredentialDocument, { input: { sellerLogin: SELLER, password } });
    assert.deepEqual(stored.codes, []);
    return stored.data!.storeApiCredential.credential.version;
  };
  try {
    // Live changes reach a subscription once the server listens, which the client is not told: store until one
    // is heard (bounded), instead of guessing a delay.
    const live = subscribe(socket, CredentialChangedDocument, { sellerLogin: SELLER });
    const heard = live.next();
    const halfASecond = () => new Promise<undefined>((resolve) => setTimeout(resolve, 500, undefined));
    let first: Change | undefined;
    for (let attempt = 0; attempt < 20 && !first; attempt++) {
      await store(`Live-passw0rd-${attempt}`);
      first = (await Promise.race([heard, halfASecond()]))?.value?.data?.credentialChanged;
    }
    assert.ok(first, 'no credential change was heard');
    assert.deepEqual([first.sellerLogin, first.kind, first.change], [SELLER, 'MARKETPLACE_API', 'STORED']);
    await live.return?.();

    // Away: one more change. Following from the last cursor, it comes, after any other version the loop stored.
    const missed = await store('Missed-passw0rd');
    const versions: number[] = [];
    let caughtUp = () => {};
    const following = followCredentialChanges(
      { ...sockets, sellerLogin: SELLER, after: first.cursor },
      { next: (change) => (versions.push(change.version), change.version === missed && caughtUp()) },
    );
    await new Promise<void>((resolve) => (caughtUp = resolve));
    await following.stop();
    assert.deepEqual(versions, [...versions].sort((a, b) => a - b), 'in commit order');
    assert.equal(versions.at(-1), missed);
    assert.ok(versions[0]! > first.version, 'nothing before the cursor');
  } finally {
    await socket.dispose();
  }
});
