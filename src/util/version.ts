import { readFileSync } from 'node:fs';
import { packagePath } from './paths.js';

/** The gate's version, from package.json: recorded in every decision. */
export const VERSION: string = (
  JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }
).version;
