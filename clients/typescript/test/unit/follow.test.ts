import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';

import WebSocket, { WebSocketServer } from 'ws';

import { type CloseAdvice, type FollowedChange, followCredentialChanges } from '../../src/index.js';
import persisted from '../../src/generated/persisted-documents.json' with { type: 'json' };

type Script = (socket: WebSocket, variables: Record<string, unknown>, id: string) => void;

/** A graphql-transport-ws server that acknowledges every connection and plays `scripts[n]` on the n-th subscribe. */
async function fakeFeed(scripts: Script[]) {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => server.once('listening', resolve));
  const subscribed: Array<Record<string, unknown>> = [];
  const payloads: Array<Record<string, any>> = [];
  server.on('connection', (socket) => {
    socket.on('message', (raw) => {
      const message = JSON.parse(raw.toString());
      if (message.type === 'connection_init') socket.send(JSON.stringify({ type: 'connection_ack' }));
      if (message.type === 'subscribe') {
        payloads.push(message.payload);
        subscribed.push(message.payload.variables);
        scripts[Math.min(subscribed.length, scripts.length) - 1]!(socket, message.payload.variables, message.id);
      }
    });
  });
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, subscribed, payloads, close: () => new Promise((resolve) => server.close(resolve)) };
}

const change = (id: string, cursor: string, version: number) =>
  JSON.stringify({
    id,
    type: 'next',
    payload: { data: { credentialChanged: { cursor, version, sellerLogin: 'bestshop', change: 'STORED' } } },
  });

function follow(url: string, after?: string) {
  const seen: FollowedChange[] = [];
  let expired = 0;
  let stopped: unknown;
  let notify = () => {};
  const following = followCredentialChanges(
    { url, token: () => 't', webSocketImpl: WebSocket, backoffMs: 5, ...(after ? { after } : {}) },
    {
      next: (entry) => (seen.push(entry), notify()),
      expired: () => void expired++,
      stopped: (why) => ((stopped = why), notify()),
    },
  );
  const until = (done: () => boolean) =>
    new Promise<void>((resolve) => {
      notify = () => done() && resolve();
      notify();
    });
  return { following, seen, until, expired: () => expired, stopped: () => stopped };
}

test('following resumes from the last cursor after the server goes away', async () => {
  const feed = await fakeFeed([
    (socket, _, id) => {
      socket.send(change(id, 'c1', 1));
      socket.send(change(id, 'c2', 2));
      setTimeout(() => socket.close(1001, 'Going away'), 20);
    },
    (socket, _, id) => socket.send(change(id, 'c3', 3)),
  ]);
  const { following, seen, until } = follow(feed.url);
  try {
    await until(() => seen.length === 3);
    assert.deepEqual(seen.map((entry) => entry.version), [1, 2, 3]);
    assert.deepEqual(feed.subscribed.map((variables) => variables.after), [null, 'c2']);
    assert.equal(following.cursor(), 'c3');
    // The manifest text and its hash, as over HTTP: a server running only trusted documents accepts it.
    const hash = feed.payloads[0]!.extensions.persistedQuery.sha256Hash as string;
    assert.equal(feed.payloads[0]!.query, (persisted as Record<string, string>)[hash]);
  } finally {
    await following.stop();
    await feed.close();
  }
});

test('an expired cursor is reported, then following goes on from now', async () => {
  const expiredAnswer: Script = (socket, _, id) => {
    const errors = [{ message: 'pruned', extensions: { code: 'CURSOR_EXPIRED', field: 'after' } }];
    socket.send(JSON.stringify({ id, type: 'next', payload: { errors } }));
    socket.send(JSON.stringify({ id, type: 'complete' }));
  };
  const feed = await fakeFeed([expiredAnswer, (socket, _, id) => socket.send(change(id, 'c9', 9))]);
  const { following, seen, until, expired } = follow(feed.url, 'c0');
  try {
    await until(() => seen.length === 1);
    assert.equal(expired(), 1);
    assert.deepEqual(feed.subscribed.map((variables) => variables.after), ['c0', null]);
  } finally {
    await following.stop();
    await feed.close();
  }
});

test('a revoked token stops following instead of reconnecting with it', async () => {
  const feed = await fakeFeed([(socket) => socket.close(4403, 'Token revoked')]);
  const { following, until, stopped } = follow(feed.url);
  try {
    await until(() => stopped() !== undefined);
    assert.equal((stopped() as CloseAdvice).action, 'sign-in');
    assert.equal(feed.subscribed.length, 1);
  } finally {
    await following.stop();
    await feed.close();
  }
});
