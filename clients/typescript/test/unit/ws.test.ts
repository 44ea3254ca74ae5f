import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CloseCode, closeAdvice } from '../../src/index.js';

test('every close the server sends is named and mapped to what the client should do', () => {
  const cases: Array<[number, string, string, string]> = [
    [1001, 'Going away', 'GoingAway', 'reconnect'],
    [1009, 'Message too big', 'MessageTooBig', 'client-bug'],
    [1013, 'Try again later', 'TryAgainLater', 'reconnect'],
    [3008, 'timeout', 'KeepAliveTimeout', 'reconnect'],
    [4400, 'Bad request: unknown message type', 'BadRequest', 'client-bug'],
    [4401, 'Unauthorized', 'Unauthorized', 'client-bug'],
    [4401, 'Token expired', 'Unauthorized', 'refresh-token'],
    [4403, 'Forbidden: bad signature', 'Forbidden', 'sign-in'],
    [4403, 'Token revoked', 'Forbidden', 'sign-in'],
    [4403, 'Forbidden', 'Forbidden', 'stop'],
    [4408, 'Connection initialisation timeout', 'ConnectionInitialisationTimeout', 'reconnect'],
    [4409, 'Subscriber for 1 already exists', 'SubscriberAlreadyExists', 'client-bug'],
    [4429, 'Rate limited', 'TooManyRequests', 'back-off'],
    [4429, 'Too many sockets', 'TooManyRequests', 'back-off'],
    [4429, 'Too many subscriptions', 'TooManyRequests', 'client-bug'],
  ];
  for (const [code, reason, name, action] of cases) {
    assert.deepEqual(closeAdvice({ code, reason }), { code, name, reason, action }, `${code} ${reason}`);
  }
  assert.equal(CloseCode.Forbidden, 4403);
});

test('an unknown close code is a client bug above 4000 and a reconnection below', () => {
  assert.equal(closeAdvice({ code: 4999, reason: '' }).action, 'client-bug');
  assert.equal(closeAdvice({ code: 1006, reason: '' }).action, 'reconnect');
  assert.equal(closeAdvice({ code: 1006 }).name, undefined);
});
