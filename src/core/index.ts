export { MandateError, isMandateError, notFound } from './errors.ts';
export { toPage } from './page.ts';
