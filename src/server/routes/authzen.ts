import type { Context, Hono } from 'hono';
import type { z } from 'zod';
import { actionSearchRequest, evaluate, evaluateMany, evaluationRequest, evaluationsRequest, resourceSearchRequest, search, subjectSearchRequest } from '../../pdp/authzen.ts';
import { MandateError } from '../../core/errors.ts';
import type { AppEnv } from '../app-env.ts';
import { bearerAuth, type BearerAuthenticator } from '../bearer-auth.ts';
import { defineRoute, type Router } from '../define-route.ts';
import type { OpenApiRegistry } from '../openapi.ts';
import type { Services } from '../services.ts';

/**
 * The AuthZEN Authorization API 1.0 endpoints, at the paths the specification uses. Callers present a
 * bearer token one of `authenticators` accepts (the admin token, or an OAuth client allowed to query the
 * PDP). `X-Request-ID` is echoed (AuthZEN §transport). Add `?explain=true` (or the header
 * `X-Mandate-Explain: true`) to get the determining policies in the response context.
 */
export function registerAuthzenRoutes(app: Hono<AppEnv>, docs: OpenApiRegistry, services: Services, authenticators: BearerAuthenticator[]): void {
  const tag = 'authzen';
  app.get('/.well-known/authzen-configuration', (c) =>
    c.json({
      policy_decision_point: services.config.publicUrl,
      issuer: services.config.publicUrl,
      access_evaluation_endpoint: `${services.config.publicUrl}/access/v1/evaluation`,
      access_evaluations_endpoint: `${services.config.publicUrl}/access/v1/evaluations`,
      search_subject_endpoint: `${services.config.publicUrl}/access/v1/search/subject`,
      search_resource_endpoint: `${services.config.publicUrl}/access/v1/search/resource`,
      search_action_endpoint: `${services.config.publicUrl}/access/v1/search/action`,
    }),
  );

  app.use('/access/v1/*', async (c, next) => {
    const requestId = c.req.header('x-request-id');
    if (requestId && /^[\x21-\x7e]{1,200}$/.test(requestId)) c.header('X-Request-ID', requestId);
    await next();
  });
  app.use(
    '/access/v1/*',
    bearerAuth({
      authenticators,
      schemeCaseInsensitive: false,
      refuse: (c) => {
        c.header('WWW-Authenticate', 'Bearer realm="mandate-pdp"');
        return new MandateError('AUTH_REQUIRED', 'a valid bearer token is required', 401);
      },
    }),
  );
  const router: Router = { hono: app, base: '', errors: ['AUTH_REQUIRED'] };

  const explainOf = (c: Context<AppEnv>) => c.req.query('explain') === 'true' || c.req.header('x-mandate-explain') === 'true';
  const log = (c: Context<AppEnv>) => ({ actor: c.get('actor'), source: 'authzen' });

  defineRoute(
    router,
    docs,
    { method: 'post', path: '/access/v1/evaluation', tag, summary: 'AuthZEN access evaluation', body: evaluationRequest, response: { status: 200, description: '{decision, context?}' }, errors: ['AUTHZEN_REQUEST_INVALID'], permission: 'authzen.evaluate' },
    async (c, { body }) => c.json(await evaluate(services.pdp, body, explainOf(c), log(c))),
  );

  defineRoute(
    router,
    docs,
    {
      method: 'post',
      path: '/access/v1/evaluations',
      tag,
      summary: 'AuthZEN batch evaluations (execute_all, deny_on_first_deny, permit_on_first_permit)',
      body: evaluationsRequest,
      response: { status: 200, description: '{evaluations}' },
      errors: ['AUTHZEN_REQUEST_INVALID'],
      permission: 'authzen.evaluate-batch',
    },
    async (c, { body }) => c.json(await evaluateMany(services.pdp, body, explainOf(c), log(c))),
  );

  for (const [kind, schema] of [['subject', subjectSearchRequest], ['resource', resourceSearchRequest], ['action', actionSearchRequest]] as const) {
    defineRoute(
      router,
      docs,
      { method: 'post', path: `/access/v1/search/${kind}`, tag, summary: `AuthZEN ${kind} search`, body: schema as z.ZodType, response: { status: 200, description: '{results, page}' }, errors: ['AUTHZEN_REQUEST_INVALID', 'AUTHZEN_PAGE_INVALID'], permission: `authzen.search.${kind}` },
      async (c, { body: raw }) => {
        const body = raw as Record<string, unknown>;
        const result = search(services.pdp, kind, body);
        await services.audit.append({ actor: c.get('actor'), action: `decision.search.${kind}`, outcome: 'success', details: { request: body, results: result.results.length, policyVersion: services.pdp.activeVersion } });
        return c.json(result);
      },
    );
  }
}
