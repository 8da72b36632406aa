/**
 * The error a policy condition raises while evaluating (type errors, overflow, missing attributes...).
 * Cedar skips such a policy and reports it; it never aborts the whole decision. Deliberately not an
 * `Error` subclass: capturing a stack trace per throw would make error-heavy policies needlessly slow.
 */
export class EvaluationError {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}
