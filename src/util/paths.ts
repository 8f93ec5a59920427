import { fileURLToPath } from 'node:url';
import path from 'node:path';

/**
 * The package root, whether this module runs from src/ (tests) or dist/ (the built CLI): both
 * sit two levels below it (util/ in src/ or dist/), beside schemas/ and trust/.
 */
export const packageRoot: string = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));

export function packagePath(...parts: string[]): string {
  return path.join(packageRoot, ...parts);
}
