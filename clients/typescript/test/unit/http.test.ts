import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';

import { ERROR_CODES, ViewerDocument, execute, isErrorCode } from '../../src/index.js';
import persisted from '../../src/generated/persisted-documents.json' with { type: 'json' };

/** A local HTTP server answering with `answers` in turn; records the bodies it got. */
async function fakeVault(answers: Array<(response: ServerResponse) => void>) {
  const bodies: Array<Record<string, any>> = [];
  const server = createServer(async (request: IncomingMessage, response: ServerResponse) => {
    let text = '';
    for await (const chunk of request) text += chunk;
    bodies.push(JSON.parse(text));
    answers[Math.min(bodies.length - 1, answers.length - 1)]!(response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  return { url, bodies, close: () => new Promise((resolve) => server.close(resolve)) };
}

const rateLimited = (response: ServerResponse) => {
  response.writeHead(429, { 'content-type': 'application/json', 'retry-after': '0' });
  response.end(JSON.stringify({ errors: [{ message: 'slow down', extensions: { code: 'RATE_LIMITED' } }] }));
};
const viewer = (response: ServerResponse) => {
  response.writeHead(200, { 'content-type': 'application/json' });
  response.end(JSON.stringify({ data: { viewer: { subject: 'tool' } } }));
};

test('a request carries the manifest text of its document and its sha256, as the persisted-query extension', async () => {
  const vault = await fakeVault([viewer]);
  try {
    const result = await execute({ url: vault.url, token: () => 't' }, ViewerDocument);
    assert.equal(result.data?.viewer.subject, 'tool');
    const hash = vault.bodies[0]!.extensions.persistedQuery.sha256Hash as string;
    assert.equal(vault.bodies[0]!.query, (persisted as Record<string, string>)[hash]);
  } finally {
    await vault.close();
  }
});

test('RATE_LIMITED is handed back with its Retry-After unless retries are asked for', async () => {
  const vault = await fakeVault([rateLimited, rateLimited, viewer]);
  try {
    const refused = await execute({ url: vault.url, token: () => 't' }, ViewerDocument);
    assert.deepEqual([refused.status, refused.codes, refused.retryAfterSeconds], [429, ['RATE_LIMITED'], 0]);

    const retried = await execute({ url: vault.url, token: () => 't', rateLimitRetries: 1 }, ViewerDocument);
    assert.deepEqual([retried.status, retried.codes], [200, []]);
    assert.equal(vault.bodies.length, 3);
  } finally {
    await vault.close();
  }
});

test('the error codes come from the registry, with their HTTP status', () => {
  assert.equal(ERROR_CODES.RATE_LIMITED, 429);
  assert.equal(ERROR_CODES.FROZEN, 200);
  assert.ok(isErrorCode('CURSOR_EXPIRED'));
  assert.ok(!isErrorCode('NOT_A_CODE'));
});
