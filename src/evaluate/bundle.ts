import { gunzipSync } from 'node:zlib';
import { PolicyError } from '../errors.js';

/** What the gate needs from an `opa build -t wasm` bundle. */
export interface WasmBundle {
  wasm: Buffer;
  data: unknown;
}

const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;

/**
 * Reads policy.wasm and data.json out of an OPA bundle (.tar.gz). The tar format is read here,
 * in memory, because a bundle is a handful of regular files and extracting to disk would leave
 * untrusted paths to sanitise; anything but plain files is ignored.
 */
export function readWasmBundle(tgz: Buffer): WasmBundle {
  let tar: Buffer;
  try {
    tar = gunzipSync(tgz, { maxOutputLength: MAX_BUNDLE_BYTES });
  } catch (err) {
    throw new PolicyError('POLICY_LOAD_FAILED', 'policy bundle is not a gzip file', { cause: err });
  }
  const files = tarFiles(tar);
  const wasm = files.get('/policy.wasm');
  if (!wasm)
    throw new PolicyError(
      'POLICY_LOAD_FAILED',
      'policy bundle has no /policy.wasm: build it with `opa build -t wasm`',
    );
  const dataText = files.get('/data.json');
  let data: unknown = {};
  if (dataText) {
    try {
      data = JSON.parse(dataText.toString('utf8'));
    } catch (err) {
      throw new PolicyError('POLICY_LOAD_FAILED', 'policy bundle data.json is not valid json', {
        cause: err,
      });
    }
  }
  return { wasm, data };
}

function tarFiles(tar: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  let at = 0;
  while (at + 512 <= tar.length) {
    const header = tar.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const name = cString(header.subarray(0, 100));
    const prefix = cString(header.subarray(345, 500));
    const size = parseInt(cString(header.subarray(124, 136)).trim() || '0', 8);
    const type = String.fromCharCode(header[156] ?? 0);
    if (!Number.isFinite(size) || size < 0 || at + 512 + size > tar.length) {
      throw new PolicyError('POLICY_LOAD_FAILED', 'policy bundle is a truncated tar archive');
    }
    if (type === '0' || type === '\0') {
      const full = prefix ? `${prefix}/${name}` : name;
      files.set(
        `/${full.replace(/^\.?\/+/, '')}`,
        Buffer.from(tar.subarray(at + 512, at + 512 + size)),
      );
    }
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

function cString(b: Buffer): string {
  const end = b.indexOf(0);
  return b.subarray(0, end === -1 ? b.length : end).toString('utf8');
}
