// A real OpenID provider for the users tests: the npm `oidc-provider` (installed by
// scripts/setup.sh into /var/tmp/mware-oidc-provider), one confidential client, PKCE
// required, the account named by whatever login is typed on its development login page
// (its e-mail is that login, verified). When the file `<flags>/tamper` exists, the ID
// token of every token response is changed in flight (another e-mail in its claims, the
// signature kept): a relying party must refuse it.
// Usage: node oidc_provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI FLAGS_DIR
import fs from 'node:fs';

const base = process.env.OIDC_PROVIDER_DIR || '/var/tmp/mware-oidc-provider';
const { default: Provider } = await import(`${base}/node_modules/oidc-provider/lib/index.js`);
const [port, clientId, clientSecret, redirectUri, flags] = process.argv.slice(2);

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true, methods: ['S256'] },
  scopes: ['openid', 'email'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  conformIdTokenClaims: false,
  findAccount: async (ctx, id) => ({
    accountId: id,
    async claims() { return { sub: id, email: id, email_verified: true }; },
  }),
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['mware-users-test-cookie-key'] },
});

provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/token' && ctx.body && ctx.body.id_token && fs.existsSync(`${flags}/tamper`)) {
    const [h, p, s] = ctx.body.id_token.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    claims.email = 'mallory@example.ru';
    claims.sub = 'mallory@example.ru';
    ctx.body = { ...ctx.body, id_token: [h, Buffer.from(JSON.stringify(claims)).toString('base64url'), s].join('.') };
  }
});

provider.listen(Number(port), '127.0.0.1', () => console.log(`oidc-provider on 127.0.0.1:${port}`));
