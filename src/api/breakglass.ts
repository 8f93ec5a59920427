// Break glass, one part of the public API (src/index.ts exports it all): the statement a
// requester signs (`gate break-glass request`).
export { breakGlassStatement } from '../breakglass/request.js';
export { BREAK_GLASS_PREDICATE_TYPE, type BreakGlassPredicate } from '../breakglass/types.js';
