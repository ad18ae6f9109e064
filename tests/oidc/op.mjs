// Test-only OpenID Provider on 127.0.0.1 (oidc-provider 9.x, ESM, Node >= 20.19), for the
// single sign-on tests (tests/oidc_provider.py starts it).
// env: OIDC_PORT (0 = free port), OIDC_ACCOUNTS (JSON file, re-read on every sign-in),
//      OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI (comma-separated allowed),
//      OIDC_KID (the signing key's id: a new one is a key rotation), OIDC_SIGN_ALG (RS256|ES256)
// stdout first line: "READY http://127.0.0.1:PORT"
import http from 'node:http';
import fs from 'node:fs';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';
import * as jose from 'jose';

const accountsFile = process.env.OIDC_ACCOUNTS;
let tamper = 'none'; // none|signature|iss|aud|exp|nonce|foreign_key

const server = http.createServer();
await new Promise((r) => server.listen(Number(process.env.OIDC_PORT || 0), '127.0.0.1', r));
const issuer = `http://127.0.0.1:${server.address().port}`;

const alg = process.env.OIDC_SIGN_ALG || 'RS256';
async function newKey(kid) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  return { ...(await jose.exportJWK(privateKey)), kid, alg, use: 'sig' };
}
const signingKey = await newKey(process.env.OIDC_KID || crypto.randomUUID());
const foreignKey = await newKey('foreign');

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.OIDC_CLIENT_ID || 'routing-admin',
    client_secret: process.env.OIDC_CLIENT_SECRET || 'test-secret',
    redirect_uris: (process.env.OIDC_REDIRECT_URI || 'http://127.0.0.1:8000/oidc/callback/').split(','),
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_post', // or client_secret_basic
    id_token_signed_response_alg: alg,
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  pkce: { required: () => true },            // refuse any authorization request without S256 PKCE
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],                      // scope "groups" -> claim "groups"
  },
  conformIdTokenClaims: false,               // put scope claims (groups) in the ID token too
  features: { devInteractions: { enabled: true } },
  ttl: { IdToken: Number(process.env.OIDC_ID_TOKEN_TTL || 3600), AccessToken: 3600, Session: 3600 },
  async loadExistingGrant(ctx) {             // first-party client: no consent screen
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid email profile groups');
    await grant.save();
    return grant;
  },
  async findAccount(ctx, sub) {
    const accounts = JSON.parse(fs.readFileSync(accountsFile, 'utf8')); // re-read each time
    const a = accounts[sub];
    if (!a) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, email: a.email, email_verified: true, name: a.name || sub,
                 preferred_username: sub, groups: a.groups || [] };
      },
    };
  },
});

async function spoil(idToken) {
  if (tamper === 'signature') {             // flip payload, keep old signature
    const [h, p, s] = idToken.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url'));
    claims.groups = ['routing-admins'];
    return [h, Buffer.from(JSON.stringify(claims)).toString('base64url'), s].join('.');
  }
  const claims = jose.decodeJwt(idToken);
  let key = signingKey;
  if (tamper === 'iss') claims.iss = 'http://127.0.0.1:1/evil';
  if (tamper === 'aud') claims.aud = 'someone-else';
  if (tamper === 'exp') { claims.iat -= 7200; claims.exp = claims.iat + 60; }
  if (tamper === 'nonce') claims.nonce = 'not-the-nonce';
  if (tamper === 'foreign_key') key = foreignKey;
  return new jose.SignJWT(claims).setProtectedHeader({ alg, kid: key.kid, typ: 'JWT' })
    .sign(await jose.importJWK(key, alg));
}

provider.use(async (ctx, next) => {
  if (ctx.path === '/__test/tamper') {      // test control: GET /__test/tamper?mode=iss
    tamper = ctx.query.mode || 'none';
    ctx.body = { tamper };
    return;
  }
  await next();
  if (ctx.path === '/token' && tamper !== 'none' && ctx.body && ctx.body.id_token) {
    ctx.body = { ...ctx.body, id_token: await spoil(ctx.body.id_token) };
  }
});

server.on('request', provider.callback());
console.log(`READY ${issuer}`);
