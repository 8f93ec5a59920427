// Signing break-glass requests and approvals through sigstore-js (`gate break-glass request
// --sign`, `gate break-glass approve`). Not re-exported by src/index.ts: the CLI loads it alone,
// only when a command signs, so nothing else pays for sigstore-js's signing client.
export {
  DEFAULT_FULCIO_URL,
  DEFAULT_REKOR_URL,
  keyIdOfPrivateKey,
  readPrivateKey,
  sameSigner,
  signPayload,
  type SignedPayload,
  type SigningIdentity,
  type SigningServices,
} from '../breakglass/sign.js';
export {
  DEFAULT_OIDC_CLIENT_ID,
  DEFAULT_OIDC_ISSUER,
  openerFor,
  tokenFromBrowser,
  tokenFromEnvironment,
} from '../breakglass/sign-oidc.js';
export { requestToApprove, type RequestToApprove } from '../breakglass/sign-approve.js';
