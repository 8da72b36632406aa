import { hash, verify as verifyPassword } from '@node-rs/argon2';
import { generateSecret, generateURI, verify as verifyTotp } from 'otplib';
import type { AuditLog } from '../audit/index.ts';
import { open, seal } from '../core/crypto.ts';
import { MandateError } from '../core/errors.ts';
import type { Store } from '../store/index.ts';

// argon2id with OWASP's second recommended profile (19 MiB, t=2, p=1): costly to guess offline, cheap enough to serve.
const ARGON2 = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;
// A hash of a random password, verified when the user is unknown so that timing does not reveal who exists.
let decoyHash: Promise<string> | undefined;

export const PASSWORD_MIN_LENGTH = 12;

export type LoginFailure = 'unknown_or_wrong_password' | 'totp_required' | 'totp_invalid' | 'inactive';

/**
 * Humans' sign-in credentials: argon2id password hashes and TOTP (RFC 6238) secrets sealed with the
 * master key. A used TOTP time step cannot be used again (replay).
 */
export class CredentialService {
  readonly #store: Store;
  readonly #audit: AuditLog;
  readonly #masterKey: Uint8Array;
  readonly #issuer: string;

  constructor(store: Store, audit: AuditLog, options: { masterKey: Uint8Array; issuerName?: string }) {
    this.#store = store;
    this.#audit = audit;
    this.#masterKey = options.masterKey;
    this.#issuer = options.issuerName ?? 'Mandate';
  }

  async setPassword(humanId: string, password: string, actor: string): Promise<void> {
    if (password.length < PASSWORD_MIN_LENGTH || password.length > 1024) throw new MandateError('PASSWORD_WEAK', `a password needs ${PASSWORD_MIN_LENGTH} to 1024 characters`, 400);
    const passwordHash = await hash(password, ARGON2);
    await this.#store.transaction(async (tx) => {
      const human = await tx.db.selectFrom('humans').select('status').where('id', '=', humanId).executeTakeFirst();
      if (!human || human.status === 'deleted') throw new MandateError('HUMAN_NOT_FOUND', `human ${humanId} not found`, 404);
      const now = new Date().toISOString();
      const exists = await tx.db.selectFrom('human_credentials').select('human_id').where('human_id', '=', humanId).executeTakeFirst();
      if (exists) await tx.db.updateTable('human_credentials').set({ password_hash: passwordHash, updated_at: now }).where('human_id', '=', humanId).execute();
      else await tx.db.insertInto('human_credentials').values({ human_id: humanId, password_hash: passwordHash, totp_sealed: null, totp_pending_sealed: null, totp_confirmed: 0, totp_last_step: null, updated_at: now }).execute();
      await this.#audit.appendIn(tx, { actor, action: 'human.password.set', target: humanId, outcome: 'success' });
    });
  }

  /**
   * Starts TOTP enrolment: a new secret (shown once, as an otpauth:// URI) that must be confirmed with a
   * code. Until it is, a second factor already confirmed stays the one sign-in asks for: re-enrolling
   * (by an admin, or by someone who took over the admin API) never turns the second factor off.
   */
  async enrollTotp(humanId: string, actor: string): Promise<{ secret: string; otpauthUri: string }> {
    const secret = generateSecret();
    return this.#store.transaction(async (tx) => {
      const human = await tx.db.selectFrom('humans').select(['status', 'email']).where('id', '=', humanId).executeTakeFirst();
      if (!human || human.status === 'deleted') throw new MandateError('HUMAN_NOT_FOUND', `human ${humanId} not found`, 404);
      const now = new Date().toISOString();
      const sealed = seal(this.#masterKey, secret, `totp:${humanId}`);
      const exists = await tx.db.selectFrom('human_credentials').select('human_id').where('human_id', '=', humanId).executeTakeFirst();
      if (exists) await tx.db.updateTable('human_credentials').set({ totp_pending_sealed: sealed, updated_at: now }).where('human_id', '=', humanId).execute();
      else await tx.db.insertInto('human_credentials').values({ human_id: humanId, password_hash: null, totp_sealed: null, totp_pending_sealed: sealed, totp_confirmed: 0, totp_last_step: null, updated_at: now }).execute();
      await this.#audit.appendIn(tx, { actor, action: 'human.totp.enroll', target: humanId, outcome: 'success' });
      return { secret, otpauthUri: generateURI({ issuer: this.#issuer, label: human.email, secret }) };
    });
  }

  /** Confirms the secret being enrolled with a current code: from then on it is the one sign-in checks. */
  async confirmTotp(humanId: string, code: string, actor: string): Promise<void> {
    const pending = await this.#matchPending(humanId, code);
    const confirmed =
      pending !== undefined &&
      (await this.#store.transaction(async (tx) => {
        // Conditional on the same pending secret: a re-enrolment racing this confirmation is not confirmed
        // by a code for the secret it replaced. The code's step counts as used (RFC 6238 §5.2: valid once).
        const updated = await tx.db
          .updateTable('human_credentials')
          .set({ totp_sealed: pending.sealed, totp_pending_sealed: null, totp_confirmed: 1, totp_last_step: pending.step, updated_at: new Date().toISOString() })
          .where('human_id', '=', humanId)
          .where('totp_pending_sealed', '=', pending.sealed)
          .executeTakeFirst();
        if (Number(updated.numUpdatedRows) !== 1) return false;
        await this.#audit.appendIn(tx, { actor, action: 'human.totp.confirm', target: humanId, outcome: 'success' });
        return true;
      }));
    if (!confirmed) {
      await this.#audit.append({ actor, action: 'human.totp.confirm', target: humanId, outcome: 'failure' });
      throw new MandateError('TOTP_INVALID', 'the code does not match', 400);
    }
  }

  /** The pending secret (sealed) and the time step of `code`, when `code` is current for it. */
  async #matchPending(humanId: string, code: string): Promise<{ sealed: string; step: number | null } | undefined> {
    if (!/^\d{6}$/.test(code)) return undefined;
    const row = await this.#store.db.selectFrom('human_credentials').select('totp_pending_sealed').where('human_id', '=', humanId).executeTakeFirst();
    if (!row?.totp_pending_sealed) return undefined;
    const secret = open(this.#masterKey, row.totp_pending_sealed, `totp:${humanId}`).toString('utf8');
    // RFC 6238 §5.2: one step of clock drift either way.
    const result = await verifyTotp({ secret, token: code, epochTolerance: 30 }).catch(() => ({ valid: false }) as const);
    if (!result.valid) return undefined;
    return { sealed: row.totp_pending_sealed, step: (result as { timeStep?: number }).timeStep ?? null };
  }

  /** Checks email + password (+ TOTP when enrolled). Returns the human id, or why not (never which part failed to a caller). */
  async verifyLogin(email: string, password: string, totp: string | undefined): Promise<{ ok: true; humanId: string } | { ok: false; failure: LoginFailure; humanId?: string }> {
    // No stored e-mail holds U+0000 (PostgreSQL text cannot, and the query failed as a 500): such a login
    // is an unknown user, answered after the same decoy hash as any other.
    const row = email.includes('\u0000')
      ? undefined
      : await this.#store.db
          .selectFrom('humans')
          .leftJoin('human_credentials', 'human_credentials.human_id', 'humans.id')
          .select(['humans.id', 'humans.status', 'human_credentials.password_hash', 'human_credentials.totp_confirmed'])
          .where('humans.email', '=', email.toLowerCase().slice(0, 320))
          .executeTakeFirst();
    if (!row?.password_hash) {
      decoyHash ??= hash('decoy-password-never-used', ARGON2);
      await verifyPassword(await decoyHash, password.slice(0, 1024)).catch(() => false);
      return { ok: false, failure: 'unknown_or_wrong_password' };
    }
    const passwordOk = await verifyPassword(row.password_hash, password.slice(0, 1024)).catch(() => false);
    if (!passwordOk) return { ok: false, failure: 'unknown_or_wrong_password', humanId: row.id };
    if (row.status !== 'active') return { ok: false, failure: 'inactive', humanId: row.id };
    if (row.totp_confirmed) {
      if (!totp) return { ok: false, failure: 'totp_required', humanId: row.id };
      if (!(await this.#checkTotp(row.id, totp))) return { ok: false, failure: 'totp_invalid', humanId: row.id };
    }
    return { ok: true, humanId: row.id };
  }

  async hasTotp(humanId: string): Promise<boolean> {
    const row = await this.#store.db.selectFrom('human_credentials').select('totp_confirmed').where('human_id', '=', humanId).executeTakeFirst();
    return Boolean(row?.totp_confirmed);
  }

  /** Checks a sign-in code against the confirmed secret; each time step is accepted once. */
  async #checkTotp(humanId: string, code: string): Promise<boolean> {
    if (!/^\d{6}$/.test(code)) return false;
    const row = await this.#store.db.selectFrom('human_credentials').select(['totp_sealed', 'totp_confirmed', 'totp_last_step']).where('human_id', '=', humanId).executeTakeFirst();
    if (!row?.totp_sealed || !row.totp_confirmed) return false;
    const secret = open(this.#masterKey, row.totp_sealed, `totp:${humanId}`).toString('utf8');
    // RFC 6238 §5.2: one step of clock drift either way; §5.2 also: a code is valid once.
    const result = await verifyTotp({ secret, token: code, epochTolerance: 30, ...(row.totp_last_step !== null && { afterTimeStep: Number(row.totp_last_step) }) }).catch(() => ({ valid: false }) as const);
    if (!result.valid) return false;
    const step = (result as { timeStep?: number }).timeStep;
    if (typeof step === 'number') {
      // Conditional update: two concurrent logins with the same code cannot both win.
      // …and only while the secret is still the one the code was checked against (a re-enrolment may
      // have been confirmed in between).
      let query = this.#store.db.updateTable('human_credentials').set({ totp_last_step: step }).where('human_id', '=', humanId).where('totp_sealed', '=', row.totp_sealed);
      query = row.totp_last_step === null ? query.where('totp_last_step', 'is', null) : query.where('totp_last_step', '<', step);
      const updated = await query.executeTakeFirst();
      if (Number(updated.numUpdatedRows) === 0) return false;
    }
    return true;
  }
}
