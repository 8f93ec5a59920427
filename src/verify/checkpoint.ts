import { crypto as core } from '@sigstore/core';
import { VerificationError, type SignedEntity, type TrustMaterial } from '@sigstore/verify';
import { LogCheckpoint } from '@sigstore/verify/dist/tlog/checkpoint.js';
import { verifyMerkleInclusion } from '@sigstore/verify/dist/tlog/merkle.js';
import { verifyTLogSET } from '@sigstore/verify/dist/tlog/set.js';

type Logs = TrustMaterial['tlogs'];
type Entry = SignedEntity['tlogEntries'][number];

/** "— <name> <base64 of key hint and signature>" (transparency-dev's signed note format) */
const SIGNATURE_LINE = /^\u2014 (\S+) (\S+)$/;

/**
 * A log entry's inclusion: its signed entry timestamp (with the library), and its inclusion proof
 * under a checkpoint its own log signed. Written here rather than @sigstore/verify's
 * verifyTLogInclusion because that one also requires the log's URL to contain the name the
 * checkpoint is signed under (and reads that name as a regular expression): a private Rekor signs
 * with its `--rekor_server.hostname`, which need not be in the URL a trusted root names it by, and
 * cosign and sigstore-go accept it (issue 13). The key is the trust anchor, as in sigstore-go: a
 * signature line counts when its key hint is the log's and it verifies under the log's key. The
 * origin the checkpoint names is returned, to be recorded.
 */
export function verifyInclusion(entry: Entry, logs: Logs): { origin?: string } {
  let verified = false;
  let origin: string | undefined;
  if (entry.inclusionPromise !== undefined) {
    verifyTLogSET(entry as Parameters<typeof verifyTLogSET>[0], logs);
    verified = true;
  }
  if (entry.inclusionProof !== undefined) {
    const checkpoint = verifyCheckpointNote(entry.inclusionProof.checkpoint?.envelope ?? '', logs);
    verifyMerkleInclusion(entry as Parameters<typeof verifyMerkleInclusion>[0], checkpoint);
    origin = checkpoint.origin;
    verified = true;
  }
  if (!verified) {
    throw new VerificationError({
      code: 'TLOG_MISSING_INCLUSION_ERROR',
      message: 'inclusion could not be verified',
    });
  }
  return origin === undefined ? {} : { origin };
}

/** The checkpoint of a signed note, once one of its signatures verifies under one of `logs`. */
export function verifyCheckpointNote(envelope: string, logs: Logs): LogCheckpoint {
  const split = envelope.indexOf('\n\n');
  if (split < 0) throw proofError('the checkpoint has no signature block');
  const note = envelope.slice(0, split + 1);
  const lines = envelope.slice(split + 2).split('\n');
  const text = Buffer.from(note, 'utf8');
  let signatures = 0;
  for (const line of lines) {
    const m = SIGNATURE_LINE.exec(line);
    if (!m) continue;
    signatures++;
    const bytes = Buffer.from(m[2]!, 'base64');
    if (bytes.length < 5) continue;
    const hint = bytes.subarray(0, 4);
    const signature = bytes.subarray(4);
    const signedBy = logs.find(
      (log) =>
        core.bufferEqual(log.logID.subarray(0, 4), hint) &&
        core.verify(text, log.publicKey, signature),
    );
    if (signedBy) return LogCheckpoint.fromString(note);
  }
  throw proofError(
    signatures === 0
      ? 'no signatures found in checkpoint'
      : 'invalid checkpoint signature: none is by the log the entry names',
  );
}

/** The names a checkpoint's signature lines are signed under. */
export function signatureNames(envelope: string): string[] {
  const split = envelope.indexOf('\n\n');
  if (split < 0) return [];
  return envelope
    .slice(split + 2)
    .split('\n')
    .flatMap((line) => {
      const m = SIGNATURE_LINE.exec(line);
      return m ? [m[1]!] : [];
    });
}

const proofError = (message: string) =>
  new VerificationError({ code: 'TLOG_INCLUSION_PROOF_ERROR', message });
