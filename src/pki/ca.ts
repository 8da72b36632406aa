import { createPrivateKey, randomBytes, webcrypto, X509Certificate as NodeX509 } from 'node:crypto';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata API.
import '@abraham/reflection';
import * as x509 from '@peculiar/x509';
import type { AuditLog } from '../audit/index.ts';
import { open, seal } from '../core/crypto.ts';
import { MandateError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import type { Store } from '../store/index.ts';
import { advisoryXactLock, LOCKS } from '../store/index.ts';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export const CA_KEY_PURPOSE = 'pki-root-ca';
const LOCK_CA = LOCKS.certificateAuthority;
const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface IssuedCertificate {
  certificate: string;
  chain: string[];
  serial: string;
  spiffeId: string;
  notBefore: string;
  notAfter: string;
  thumbprint: string;
}

/**
 * Mandate's internal CA: an ECDSA P-256 root whose private key is sealed with the master key in the key
 * ring's table (the certificate travels in its public JWK as `x5c`). It issues short-lived (1 hour by
 * default) client certificates from CSRs, with a SPIFFE-style URI SAN naming the identity, and the
 * server certificate of the mTLS listener.
 */
export class CertificateAuthority {
  readonly #store: Store;
  readonly #audit: AuditLog;
  readonly #masterKey: Uint8Array;
  readonly #trustDomain: string;
  readonly #defaultSeconds: number;
  #root: Promise<{ cert: x509.X509Certificate; key: CryptoKey; pem: string }> | undefined;

  constructor(store: Store, audit: AuditLog, options: { masterKey: Uint8Array; trustDomain: string; certificateSeconds: number }) {
    this.#store = store;
    this.#audit = audit;
    this.#masterKey = options.masterKey;
    this.#trustDomain = options.trustDomain;
    this.#defaultSeconds = options.certificateSeconds;
  }

  get trustDomain(): string {
    return this.#trustDomain;
  }

  spiffeId(kind: 'agent' | 'workload', id: string): string {
    return `spiffe://${this.#trustDomain}/${kind}/${id}`;
  }

  /** The root certificate (PEM), created on first use. */
  async rootPem(): Promise<string> {
    return (await this.#loadRoot()).pem;
  }

  async rootCertificate(): Promise<NodeX509> {
    return new NodeX509(await this.rootPem());
  }

  #loadRoot() {
    this.#root ??= this.#createOrLoad().catch((error) => {
      this.#root = undefined;
      throw error;
    });
    return this.#root;
  }

  async #createOrLoad(): Promise<{ cert: x509.X509Certificate; key: CryptoKey; pem: string }> {
    const find = (db: Store['db']) => db.selectFrom('keys').selectAll().where('purpose', '=', CA_KEY_PURPOSE).where('retired_at', 'is', null).orderBy('created_at', 'desc').executeTakeFirst();
    let row = await find(this.#store.db);
    if (!row) {
      await this.#store.transaction(async ({ db }) => {
        if (this.#store.dialect === 'postgres') await advisoryXactLock(db, LOCK_CA);
        if (await find(db)) return;
        const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
        const id = newId('key');
        const cert = await x509.X509CertificateGenerator.createSelfSigned({
          serialNumber: randomBytes(16).toString('hex').replace(/^[89a-f]/, '1'),
          name: `CN=Mandate internal CA, O=${this.#trustDomain}`,
          notBefore: new Date(Date.now() - 60_000),
          notAfter: new Date(Date.now() + 10 * 365 * 86_400_000),
          keys,
          signingAlgorithm: SIGNING,
          extensions: [
            new x509.BasicConstraintsExtension(true, 0, true),
            new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
            await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
          ],
        });
        const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
        const publicJwk = { ...(await webcrypto.subtle.exportKey('jwk', keys.publicKey)), kid: id, x5c: [Buffer.from(cert.rawData).toString('base64')] };
        await db
          .insertInto('keys')
          .values({ id, purpose: CA_KEY_PURPOSE, public_jwk: JSON.stringify(publicJwk), sealed_private: seal(this.#masterKey, pkcs8.toString('base64'), `key:${id}`), created_at: new Date().toISOString(), retired_at: null })
          .execute();
      });
      row = await find(this.#store.db);
    }
    const pkcs8 = Buffer.from(open(this.#masterKey, row!.sealed_private, `key:${row!.id}`).toString('utf8'), 'base64');
    const key = await webcrypto.subtle.importKey('pkcs8', pkcs8, EC, false, ['sign']);
    const der = (JSON.parse(row!.public_jwk) as { x5c: string[] }).x5c[0]!;
    const cert = new x509.X509Certificate(Buffer.from(der, 'base64'));
    return { cert, key, pem: cert.toString('pem') };
  }

  /**
   * Issues a client certificate from a CSR for an identity the caller has authenticated. The CSR's
   * subject and extensions are ignored: Mandate decides the name (SPIFFE URI) and usages.
   */
  async issue(identity: { id: string; kind: 'agent' | 'workload' }, csrPem: string, actor: string, seconds = this.#defaultSeconds): Promise<IssuedCertificate> {
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(csrPem);
    } catch {
      throw new MandateError('CSR_INVALID', 'not a PEM PKCS#10 certificate request', 400);
    }
    // Proof of possession: the CSR must be signed by the key it carries.
    if (!(await csr.verify().catch(() => false))) throw new MandateError('CSR_INVALID', 'the CSR signature does not verify', 400);
    const algorithm = csr.publicKey.algorithm as { name?: string; namedCurve?: string; modulusLength?: number };
    if (!(algorithm.name === 'ECDSA' || (algorithm.name === 'RSASSA-PKCS1-v1_5' && (algorithm.modulusLength ?? 0) >= 2048) || algorithm.name === 'Ed25519')) {
      throw new MandateError('CSR_KEY_WEAK', 'use an ECDSA P-256/P-384, Ed25519 or RSA ≥ 2048 key', 400);
    }
    const spiffeId = this.spiffeId(identity.kind, identity.id);
    const certificate = await this.#sign({
      subject: `CN=${identity.id}`,
      publicKey: csr.publicKey,
      seconds,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth], false),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], true),
      ],
    });
    const node = new NodeX509(certificate.toString('pem'));
    const issued: IssuedCertificate = {
      certificate: certificate.toString('pem'),
      chain: [await this.rootPem()],
      serial: certificate.serialNumber,
      spiffeId,
      notBefore: certificate.notBefore.toISOString(),
      notAfter: certificate.notAfter.toISOString(),
      thumbprint: Buffer.from(node.fingerprint256.replaceAll(':', ''), 'hex').toString('base64url'),
    };
    await this.#store.transaction(async (tx) => {
      await tx.db.insertInto('pki_certificates').values({ serial: issued.serial, identity_id: identity.id, spiffe_id: spiffeId, thumbprint: issued.thumbprint, not_before: issued.notBefore, not_after: issued.notAfter, created_at: new Date().toISOString(), revoked_at: null }).execute();
      await this.#audit.appendIn(tx, { actor, action: 'pki.certificate.issue', target: identity.id, outcome: 'success', details: { serial: issued.serial, spiffeId, notAfter: issued.notAfter } });
    });
    return issued;
  }

  /** A server certificate for the mTLS listener (hostnames and addresses as SANs), with its key. */
  async serverCertificate(names: string[], seconds = 30 * 86_400): Promise<{ key: string; cert: string; ca: string }> {
    const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
    const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n }));
    const certificate = await this.#sign({
      subject: `CN=${names[0] ?? 'mandate'}`,
      publicKey: keys.publicKey,
      seconds,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension(san, false),
      ],
    });
    const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
    const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }) as string;
    return { key, cert: certificate.toString('pem'), ca: await this.rootPem() };
  }

  async #sign(input: { subject: string; publicKey: x509.PublicKey | CryptoKey; seconds: number; extensions: x509.Extension[] }): Promise<x509.X509Certificate> {
    const root = await this.#loadRoot();
    const now = Date.now();
    return x509.X509CertificateGenerator.create({
      serialNumber: randomBytes(16).toString('hex').replace(/^[89a-f]/, '1'),
      subject: input.subject,
      issuer: root.cert.subject,
      // A minute of backdating tolerates clock skew between Mandate and the verifier.
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + input.seconds * 1000),
      publicKey: input.publicKey,
      signingKey: root.key,
      signingAlgorithm: SIGNING,
      extensions: [...input.extensions, await x509.AuthorityKeyIdentifierExtension.create(root.cert.publicKey)],
    });
  }
}
