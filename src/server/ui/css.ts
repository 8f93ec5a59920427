/**
 * The web view's one stylesheet, served as /ui/assets/gate.css (the Content-Security-Policy
 * allows styles from this origin only, so nothing is inline). Focus is always visible.
 */
export const STYLESHEET = `
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #fff; --muted: #57606a; --line: #d0d7de;
  --allow: #1a7f37; --deny: #cf222e; --override: #9a6700; --error: #8250df; --focus: #0969da; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --bg: #0d1117; --muted: #9da7b3; --line: #30363d;
    --allow: #3fb950; --deny: #f85149; --override: #d29922; --error: #a371f7; --focus: #58a6ff; }
}
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--focus); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip { position: absolute; left: -9999px; top: 0; padding: .5rem 1rem; background: var(--bg); }
.skip:focus { left: 1rem; top: 1rem; z-index: 10; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 1rem; padding: .5rem 1.5rem;
  border-bottom: 1px solid var(--line); }
.brand { font-weight: 700; margin: 0; }
nav { display: flex; flex: 1; align-items: center; gap: 1rem; }
nav ul { display: flex; gap: 1rem; list-style: none; margin: 0; padding: 0; flex: 1; }
nav a[aria-current="page"] { font-weight: 700; }
.logout { margin: 0; }
main { padding: 1rem 1.5rem 3rem; max-width: 80rem; }
main:focus { outline: none; }
h1 { font-size: 1.5rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid var(--line); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .35rem .5rem; border-bottom: 1px solid var(--line); }
code, .digest { font-family: ui-monospace, monospace; font-size: .9em; overflow-wrap: anywhere; }
.outcome { font-weight: 700; text-transform: uppercase; font-size: .85em; }
.outcome-allow, .same { color: var(--allow); }
.outcome-deny, .different { color: var(--deny); }
.outcome-override { color: var(--override); }
.outcome-error { color: var(--error); }
.verdict { font-size: 1.4rem; font-weight: 700; }
.notice { padding: .5rem 1rem; border: 1px solid var(--line); }
.notice.error { border-color: var(--deny); }
form.filters { display: grid; grid-template-columns: repeat(auto-fill, minmax(14rem, 1fr)); gap: .75rem;
  align-items: start; margin-bottom: 1rem; }
form.filters p { margin: 0; }
form.filters .actions { align-self: center; }
label { display: block; font-weight: 600; font-size: .9em; }
input, select, button { font: inherit; padding: .3rem .5rem; }
input, select { width: 100%; }
.hint { color: var(--muted); font-size: .85em; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
`;
