import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { GateError } from '../../errors.js';
import { EXIT, type CommandIO, reportError } from '../io.js';
import { refreshTrustedRootWithTUF } from '../../api/verify.js';

export interface TrustRefreshOptions {
  out: string;
  mirrorUrl?: string;
  tufRoot?: string;
  cache?: string;
}

/**
 * `gate trust refresh`: fetches the trusted root through TUF and writes it to a file that later
 * verifications read offline with --trusted-root. The root is checked like any other before it
 * is written, so a malformed root never lands on disk.
 */
export async function trustRefreshCommand(
  opts: TrustRefreshOptions,
  io: CommandIO,
): Promise<number> {
  try {
    const resolve = (p?: string) => (p === undefined ? undefined : path.resolve(io.cwd, p));
    const { trust, json } = await refreshTrustedRootWithTUF({
      mirrorURL: opts.mirrorUrl,
      rootPath: resolve(opts.tufRoot),
      cachePath: resolve(opts.cache) ?? path.join(io.cwd, '.gate', 'tuf-cache'),
    });
    const out = resolve(opts.out)!;
    try {
      writeFileSync(out, `${JSON.stringify(json, null, 2)}\n`);
    } catch (err) {
      throw new GateError('INPUT_UNREADABLE', `cannot write ${out}`, { cause: err });
    }
    io.stdout(
      `wrote ${out}: ${trust.root.tlogs.length} logs, ${trust.root.certificateAuthorities.length} certificate authorities\n`,
    );
    return EXIT.ok;
  } catch (err) {
    return reportError(err, io);
  }
}
