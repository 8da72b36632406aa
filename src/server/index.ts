export { createApp, type MandateApp, type BearerAuthenticator } from './app.ts';
export { createServices, createLogger, type Services } from './services.ts';
export { startServer, type RunningServer } from './server.ts';
export { problem, toMandateError } from './problem.ts';
export { readBody, readQuery, pageQuery } from './validation.ts';
export { OpenApiRegistry, type RouteDoc } from './openapi.ts';
export type { AppEnv } from './app-env.ts';
