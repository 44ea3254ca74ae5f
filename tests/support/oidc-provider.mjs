// A real OpenID Connect provider (oidc-provider, OpenID Certified) on 127.0.0.1 for cdvault's identity tests.
// Issues ES256 `at+jwt` access tokens (RFC 9068) to clients by the client_credentials grant, for the resource
// (audience) given. Prints `ISSUER <url>` once listening; stops when stdin closes.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createServer } from 'node:http';

const modules = process.env.NODE_PATH;
const load = (pkg, file) => import(pathToFileURL(join(modules, pkg, file)).href);
const { default: Provider } = await load('oidc-provider', 'lib/index.js');
const jose = await load('jose', 'dist/webapi/index.js');

const [audience, clientsJson] = process.argv.slice(2);
const clients = JSON.parse(clientsJson);
const { privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
const jwk = { ...(await jose.exportJWK(privateKey)), kid: 'es256-1', alg: 'ES256', use: 'sig' };

const server = createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
const provider = new Provider(issuer, {
  jwks: { keys: [jwk] },
  clients: clients.map((c) => ({
    client_id: c.id,
    client_secret: c.secret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    id_token_signed_response_alg: 'ES256',
    scope: c.scope,
  })),
  scopes: ['openid', ...new Set(clients.flatMap((c) => c.scope.split(' ')))],
  features: {
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({ audience, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } }, scope: clients.flatMap((c) => c.scope.split(' ')).join(' ') }),
    },
  },
});
server.on('request', provider.callback());
console.log(`ISSUER ${issuer}`);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
