import { createHmac } from 'node:crypto';
import type { Context, Hono } from 'hono';
import { consentPage, loginPage, RateLimiter, type CredentialService } from '../../authn/index.ts';
import { constantTimeEqual } from '../../core/crypto.ts';
import { MandateError } from '../../core/errors.ts';
import { OAUTH_ROUTES } from '../../oauth/index.ts';
import { deriveKey } from '../../oauth/provider.ts';
import type { AppEnv } from '../app-env.ts';
import type { Services } from '../services.ts';
import { nodeOf } from './oauth.ts';

const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
};

/**
 * Login and consent pages of the authorization code flow (oidc-provider interactions). Password
 * (argon2id) then TOTP; attempts rate-limited per account and per address; CSRF token bound to the
 * interaction (whose cookie is HttpOnly, SameSite=Lax, signed) plus an Origin check. Passkeys and SSO
 * slot in as further `login` results with their own `amr`.
 */
export function registerInteractionRoutes(app: Hono<AppEnv>, services: Services, credentials: CredentialService): void {
  const { oauth } = services;
  const csrfKey = deriveKey(services.config.masterKey, 'csrf');
  const csrfFor = (uid: string) => createHmac('sha256', csrfKey).update(`interaction:${uid}`).digest('base64url');
  const perAccount = new RateLimiter(oauth.settings.loginMaxAttempts, 15 * 60_000);
  const perAddress = new RateLimiter(oauth.settings.loginMaxAttempts * 10, 15 * 60_000);
  const base = OAUTH_ROUTES.interaction;

  const html = (c: Context, body: string, status: 200 | 400 | 403 | 429 = 200) => c.html(body, status, SECURITY_HEADERS);

  const checkForm = async (c: Context, uid: string): Promise<Record<string, string>> => {
    // Browsers send Origin on POST; if present it must be ours (CSRF defence in depth, beside the token).
    const origin = c.req.header('origin');
    if (origin && origin !== 'null' && origin !== new URL(oauth.issuer).origin) throw new MandateError('CSRF_REJECTED', 'cross-site form post', 403);
    const body = await c.req.parseBody();
    const form = Object.fromEntries(Object.entries(body).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
    if (!form.csrf || !constantTimeEqual(form.csrf, csrfFor(uid))) throw new MandateError('CSRF_REJECTED', 'the form is stale or forged; start again', 403);
    return form;
  };

  const details = async (c: Context) => {
    const { incoming, outgoing } = nodeOf(c);
    const provider = await oauth.provider();
    try {
      return { provider, incoming, outgoing, interaction: await provider.interactionDetails(incoming, outgoing) };
    } catch {
      throw new MandateError('INTERACTION_EXPIRED', 'this sign-in has expired; start again from the application', 400);
    }
  };

  const clientName = async (provider: Awaited<ReturnType<typeof oauth.provider>>, clientId: string) => {
    const client = await provider.Client.find(clientId);
    return String(client?.clientName ?? clientId);
  };

  app.get(`${base}/:uid`, async (c) => {
    const { provider, interaction } = await details(c);
    const uid = c.req.param('uid');
    if (interaction.uid !== uid) throw new MandateError('INTERACTION_EXPIRED', 'this sign-in does not match your session', 400);
    const name = await clientName(provider, interaction.params.client_id);
    if (interaction.prompt.name === 'login') return html(c, loginPage({ action: `${base}/${uid}/login`, csrf: csrfFor(uid), clientName: name }));
    // The consent POST grants every resource's scopes, so the page must name every resource (a request
    // with several `resource` parameters used to show only the first).
    const resourceScopes = (interaction.prompt.details.missingResourceScopes ?? {}) as Record<string, string[]>;
    const resources = Object.keys(resourceScopes);
    const resource = resources.length > 0 ? resources.join(', ') : oauth.issuer;
    const scopes = [...new Set(Object.values(resourceScopes).flat())];
    return html(c, consentPage({ action: `${base}/${uid}/consent`, csrf: csrfFor(uid), clientName: name, scopes, resource, days: oauth.settings.delegationDays }));
  });

  app.post(`${base}/:uid/login`, async (c) => {
    const uid = c.req.param('uid');
    const form = await checkForm(c, uid);
    const { provider, incoming, outgoing, interaction } = await details(c);
    if (interaction.uid !== uid || interaction.prompt.name !== 'login') throw new MandateError('INTERACTION_EXPIRED', 'this sign-in does not match your session', 400);
    const name = await clientName(provider, interaction.params.client_id);
    const email = (form.email ?? '').trim().toLowerCase().slice(0, 320);
    const address = incoming.socket.remoteAddress ?? 'unknown';
    const again = (error: string, status: 400 | 429, needTotp = false) => html(c, loginPage({ action: `${base}/${uid}/login`, csrf: csrfFor(uid), clientName: name, email, error, needTotp }), status);
    if (!perAddress.take(address) || !perAccount.take(email)) {
      await services.audit.append({ actor: `anonymous@${address}`, action: 'human.login', target: email || null, outcome: 'deny', details: { reason: 'rate_limited' } });
      return again('Too many attempts. Wait a few minutes and try again.', 429);
    }
    const result = await credentials.verifyLogin(email, form.password ?? '', form.totp || undefined);
    if (!result.ok) {
      await services.audit.append({ actor: result.humanId ? `human:${result.humanId}` : `anonymous@${address}`, action: 'human.login', target: result.humanId ?? null, outcome: 'deny', details: { reason: result.failure, clientId: interaction.params.client_id } });
      if (result.failure === 'totp_required') return again('Enter the code from your authenticator app.', 400, true);
      // One message for unknown user and wrong password: no account enumeration.
      return again(result.failure === 'totp_invalid' ? 'That code is not valid.' : 'Email or password is not correct.', 400, result.failure === 'totp_invalid');
    }
    perAccount.reset(email);
    const amr = (await credentials.hasTotp(result.humanId)) ? ['pwd', 'otp', 'mfa'] : ['pwd'];
    await services.audit.append({ actor: `human:${result.humanId}`, action: 'human.login', target: result.humanId, outcome: 'success', details: { amr, clientId: interaction.params.client_id } });
    const redirect = await provider.interactionResult(incoming, outgoing, { login: { accountId: result.humanId, amr } }, { mergeWithLastSubmission: false });
    return c.redirect(redirect, 303);
  });

  app.post(`${base}/:uid/consent`, async (c) => {
    const uid = c.req.param('uid');
    const form = await checkForm(c, uid);
    const { provider, incoming, outgoing, interaction } = await details(c);
    if (interaction.uid !== uid || interaction.prompt.name !== 'consent' || !interaction.session?.accountId) throw new MandateError('INTERACTION_EXPIRED', 'this consent does not match your session', 400);
    const accountId: string = interaction.session.accountId;
    const clientId: string = interaction.params.client_id;
    if (form.decision !== 'allow') {
      await services.audit.append({ actor: `human:${accountId}`, action: 'delegation.consent', target: clientId, outcome: 'deny' });
      const redirect = await provider.interactionResult(incoming, outgoing, { error: 'access_denied', error_description: 'the user denied the request' }, { mergeWithLastSubmission: false });
      return c.redirect(redirect, 303);
    }
    const promptDetails = interaction.prompt.details;
    const grant = interaction.grantId ? await provider.Grant.find(interaction.grantId) : new provider.Grant({ accountId, clientId });
    if (promptDetails.missingOIDCScope) grant.addOIDCScope(promptDetails.missingOIDCScope.join(' '));
    if (promptDetails.missingOIDCClaims) grant.addOIDCClaims(promptDetails.missingOIDCClaims);
    const delegated: string[] = [];
    for (const [indicator, scopes] of Object.entries((promptDetails.missingResourceScopes ?? {}) as Record<string, string[]>)) {
      grant.addResourceScope(indicator, scopes.join(' '));
      delegated.push(...scopes);
    }
    const grantId = await grant.save();
    // The consent is also the user's delegation to the agent behind the client (RFC 8693 exchanges draw on it).
    const info = await oauth.clientInfo(clientId);
    if (info?.identityId) await oauth.delegations.grant({ humanId: accountId, identityId: info.identityId, clientId, scopes: delegated }, `human:${accountId}`);
    const redirect = await provider.interactionResult(incoming, outgoing, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return c.redirect(redirect, 303);
  });
}
