import type { Migration } from 'kysely';
import { foundation } from './0001-foundation.ts';
import { oauth } from './0002-oauth.ts';
import { policy } from './0003-policy.ts';
import { gateway } from './0004-gateway.ts';
import { governance } from './0005-governance.ts';
import { access } from './0007-access.ts';
import { policyLinks } from './0008-policy-links.ts';
import { totpPending } from './0009-totp-pending.ts';
import { scimLookupIndexes } from './0010-scim-lookup-indexes.ts';
import { tokensNotBefore } from './0011-tokens-not-before.ts';

/**
 * Every migration, in order. Names sort lexically; append new ones with the next number.
 * A migration that has shipped is never edited: write a new one.
 */
export const migrations: Record<string, Migration> = {
  '0001-foundation': foundation,
  '0002-oauth': oauth,
  '0003-policy': policy,
  '0004-gateway': gateway,
  '0005-governance': governance,
  '0007-access': access,
  '0008-policy-links': policyLinks,
  '0009-totp-pending': totpPending,
  '0010-scim-lookup-indexes': scimLookupIndexes,
  '0011-tokens-not-before': tokensNotBefore,
};
