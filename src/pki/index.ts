export { CertificateAuthority, CA_KEY_PURPOSE, type IssuedCertificate } from './ca.ts';
