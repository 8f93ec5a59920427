import { GateError } from '../errors.js';
import { parseJSON, sha256Hex } from '../util/input.js';

/** `gh attestation trusted-root` prints two roots; more than this is not a trust file. */
export const MAX_TRUSTED_ROOTS = 16;

/** One trusted root document as found in a trust file, not yet checked. */
export interface RootDocument {
  json: unknown;
  /** sha256 hex of the document's bytes (the whole file, or its line) */
  digest: string;
  /** 1-based line in a JSON Lines file; absent for a plain JSON file */
  line?: number;
}

/**
 * Splits a trust file into root documents: one JSON document (trusted_root.json, pretty-printed
 * or not), or JSON Lines with one root per line (`gh attestation trusted-root` prints the
 * public-good root, then GitHub's). Blank lines are skipped; line numbers count them so a message
 * points at the line a user sees in an editor.
 */
export function rootDocuments(bytes: Buffer, what: string): RootDocument[] {
  const text = bytes.toString('utf8');
  if (text.trim() === '') throw new GateError('TRUST_ROOT_INVALID', `${what} is empty`);
  const lines = text
    .split('\n')
    .map((s, i) => ({ s: s.replace(/\r$/, ''), line: i + 1 }))
    .filter(({ s }) => s.trim() !== '');
  let whole: unknown;
  try {
    whole = parseJSON(bytes, what);
  } catch (err) {
    // One line that does not parse is a broken JSON file: keep the plain json error.
    if (lines.length < 2) throw err;
    if (lines.length > MAX_TRUSTED_ROOTS) {
      throw new GateError('TRUST_ROOT_INVALID', `${what} has more than ${MAX_TRUSTED_ROOTS} roots`);
    }
    return lines.map(({ s, line }) => lineDocument(s, line, what));
  }
  return [{ json: whole, digest: sha256Hex(bytes) }];
}

function lineDocument(s: string, line: number, what: string): RootDocument {
  try {
    return { json: JSON.parse(s), digest: sha256Hex(s), line };
  } catch (err) {
    const detail = err instanceof Error ? err.message.toLowerCase() : 'unparseable';
    throw new GateError(
      'TRUST_ROOT_INVALID',
      `${what} is neither json nor json lines: line ${line} is not json (${detail})`,
      { cause: err },
    );
  }
}
