export { CredentialService, PASSWORD_MIN_LENGTH, type LoginFailure } from './credentials.ts';
export { RateLimiter } from './rate-limit.ts';
export { loginPage, consentPage, escapeHtml } from './pages.ts';
