export { MandateError, isMandateError, notFound, problemDetails, PROBLEM_MEMBERS } from './errors.ts';
export { toPage } from './page.ts';
