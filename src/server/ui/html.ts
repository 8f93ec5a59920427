/**
 * The web view's one way to write HTML: a tagged template that escapes every value put into it,
 * unless the value is itself Html built by this template. Nothing else in the web view writes
 * markup, so a value from the ledger (a rule's message, a signer's identity, a justification)
 * can never become markup.
 */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** What a template may hold: text (escaped), Html (kept), lists of either, or nothing. */
export type Part = Html | string | number | null | undefined | false | readonly Part[];

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for an element's content and for a quoted attribute value alike. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

function render(part: Part): string {
  if (part === null || part === undefined || part === false) return '';
  if (part instanceof Html) return part.text;
  if (Array.isArray(part)) return (part as readonly Part[]).map(render).join('');
  return escapeHtml(String(part));
}

export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let text = strings[0] ?? '';
  values.forEach((v, i) => (text += render(v) + (strings[i + 1] ?? '')));
  return new Html(text);
}

/** A path under /ui with its segments and query escaped: links are built only through this. */
export function uiPath(segments: string[], query: Record<string, string | undefined> = {}): string {
  const path = ['/ui', ...segments.map(encodeURIComponent)].join('/');
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
