import type { FastifyInstance } from 'fastify';
import { GateError } from '../errors.js';
import { jsonDepthExceeds } from '../util/input.js';

export { jsonDepthExceeds } from '../util/input.js';

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
