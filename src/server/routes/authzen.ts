import type { Context, Hono } from 'hono';
import { actionSearchRequest, evaluate, evaluateMany, evaluationRequest, evaluationsRequest, resourceSearchRequest, search, subjectSearchRequest } from '../../pdp/authzen.ts';
import { MandateError } from '../../core/errors.ts';
import type { AppEnv } from '../app-env.ts';
import type { BearerAuthenticator } from '../app.ts';
import type { OpenApiRegistry } from '../openapi.ts';
import type { Services } from '../services.ts';
import { readBody } from '../validation.ts';

/**
 * The AuthZEN Authorization API 1.0 endpoints, at the paths the specification uses. Callers present a
 * bearer token one of `authenticators` accepts (the admin token, or an OAuth client allowed to query the
 * PDP). `X-Request-ID` is echoed (AuthZEN §transport). Add `?explain=true` (or the header
 * `X-Mandate-Explain: true`) to get the determining policies in the response context.
 */
export function registerAuthzenRoutes(app: Hono<AppEnv>, docs: OpenApiRegistry, services: Services, authenticators: BearerAuthenticator[]): void {
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
    const match = /^Bearer ([\x21-\x7e]{1,4096})$/.exec(c.req.header('authorization') ?? '');
    let actor: string | undefined;
    if (match) {
      for (const authenticate of authenticators) {
        actor = await authenticate(match[1]!);
        if (actor) break;
      }
    }
    if (!actor) {
      c.header('WWW-Authenticate', 'Bearer realm="mandate-pdp"');
      throw new MandateError('AUTH_REQUIRED', 'a valid bearer token is required', 401);
    }
    c.set('actor', actor);
    await next();
  });

  const explainOf = (c: Context<AppEnv>) => c.req.query('explain') === 'true' || c.req.header('x-mandate-explain') === 'true';
  const log = (c: Context<AppEnv>) => ({ actor: c.get('actor'), source: 'authzen' });

  docs.add({ method: 'post', path: '/access/v1/evaluation', tag: 'authzen', summary: 'AuthZEN access evaluation', body: evaluationRequest, success: { status: 200, description: '{decision, context?}' } });
  app.post('/access/v1/evaluation', async (c) => c.json(await evaluate(services.pdp, await readBody(c, evaluationRequest), explainOf(c), log(c))));

  docs.add({ method: 'post', path: '/access/v1/evaluations', tag: 'authzen', summary: 'AuthZEN batch evaluations (execute_all, deny_on_first_deny, permit_on_first_permit)', body: evaluationsRequest, success: { status: 200, description: '{evaluations}' } });
  app.post('/access/v1/evaluations', async (c) => c.json(await evaluateMany(services.pdp, await readBody(c, evaluationsRequest), explainOf(c), log(c))));

  for (const [kind, schema] of [['subject', subjectSearchRequest], ['resource', resourceSearchRequest], ['action', actionSearchRequest]] as const) {
    docs.add({ method: 'post', path: `/access/v1/search/${kind}`, tag: 'authzen', summary: `AuthZEN ${kind} search`, body: schema, success: { status: 200, description: '{results, page}' } });
    app.post(`/access/v1/search/${kind}`, async (c) => {
      const body = (await readBody(c, schema)) as Record<string, unknown>;
      const result = search(services.pdp, kind, body);
      await services.audit.append({ actor: c.get('actor'), action: `decision.search.${kind}`, outcome: 'success', details: { request: body, results: result.results.length, policyVersion: services.pdp.activeVersion } });
      return c.json(result);
    });
  }
}
