import type { FastifyInstance } from 'fastify';
import { GateError } from '../errors.js';

/**
 * Bounded JSON for every route. A `context` nested thousands of levels deep parsed fine and then
 * overflowed the stack further in (canonical JSON, the policy input), answering 503 or a bare 500
 * with nothing recorded. The depth is counted over the raw text, in one loop, before JSON.parse
 * sees it, so nothing downstream has to be careful.
 */

/** Levels of nesting allowed in a request body, the body itself being level 1. */
export const MAX_JSON_DEPTH = 32;
/** Admission reviews wrap whole Kubernetes objects; custom resources can nest deeply. */
export const ADMISSION_MAX_DEPTH = 128;

/** Whether the JSON text nests objects and arrays more than `max` levels. Strings are skipped. */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash escapes the next character, a quote included
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}

/**
 * Replaces fastify's JSON parser with the same parser behind a depth check. A route raises its
 * own limit with `config: { maxJsonDepth }`. The body size is fastify's bodyLimit (413).
 */
export function installBoundedJson(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'ignore');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const config = request.routeOptions.config as { maxJsonDepth?: number } | undefined;
    const max = config?.maxJsonDepth ?? MAX_JSON_DEPTH;
    if (jsonDepthExceeds(String(body), max)) {
      const err = new GateError('INPUT_TOO_DEEP', `request body nests more than ${max} levels`);
      done(err, undefined);
      return;
    }
    parse(request, String(body), done);
  });
}
