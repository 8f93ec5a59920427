import { html, type Html, type Part } from './html.js';

export const STYLESHEET_PATH = '/ui/assets/gate.css';

const NAV: Array<{ href: string; label: string }> = [
  { href: '/ui/decisions', label: 'Decisions' },
  { href: '/ui/break-glass', label: 'Break glass' },
  { href: '/ui/drift', label: 'Recheck drift' },
  { href: '/ui/ledger', label: 'Ledger health' },
];

export interface PageOptions {
  title: string;
  /** the nav entry to mark as the current page */
  current?: string;
  /** signed in: shows the navigation and the sign-out button */
  signedIn?: boolean;
}

/**
 * Every page's frame: a skip link first (keyboard users reach the content in one Tab), the
 * navigation as real links, sign-out as a real form button, the content in <main>.
 */
export function page(opts: PageOptions, body: Part): Html {
  const nav = opts.signedIn
    ? html`<nav aria-label="Sections">
        <ul>
          ${NAV.map(
            (n) =>
              html`<li>
                <a href="${n.href}" ${n.href === opts.current ? html`aria-current="page"` : ''}
                  >${n.label}</a
                >
              </li>`,
          )}
        </ul>
        <form method="post" action="/ui/logout" class="logout">
          <button type="submit">Sign out</button>
        </form>
      </nav>`
    : '';
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${opts.title} · gate</title>
        <link rel="stylesheet" href="${STYLESHEET_PATH}" />
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header>
          <p class="brand">gate · audit</p>
          ${nav}
        </header>
        <main id="main" tabindex="-1">
          <h1>${opts.title}</h1>
          ${body}
        </main>
      </body>
    </html>`;
}

/** A message box: role=alert for errors so a screen reader announces it. */
export function notice(kind: 'error' | 'info', text: Part): Html {
  return kind === 'error'
    ? html`<p class="notice error" role="alert">${text}</p>`
    : html`<p class="notice">${text}</p>`;
}

/** A definition list of label/value rows; rows with no value are left out. */
export function facts(rows: Array<[string, Part]>): Html {
  const kept = rows.filter(([, v]) => v !== undefined && v !== null && v !== '' && v !== false);
  return html`<dl class="facts">
    ${kept.map(
      ([k, v]) =>
        html`<dt>${k}</dt>
          <dd>${v}</dd>`,
    )}
  </dl>`;
}

/** A table with one header row of column names; `rows` are its <tr> rows. */
export function dataTable(columns: string[], rows: Part, caption?: string): Html {
  return html`<table>
    ${
      caption
        ? html`<caption class="hint">
            ${caption}
          </caption>`
        : ''
    }
    <thead>
      <tr>
        ${columns.map((c) => html`<th scope="col">${c}</th>`)}
      </tr>
    </thead>
    <tbody>
      ${rows}
    </tbody>
  </table>`;
}
