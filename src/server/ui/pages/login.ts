import { html, type Html } from '../html.js';
import { notice, page } from '../layout.js';

/**
 * The sign-in form: the audit token is typed (or pasted) once and POSTed; the answer sets the
 * session cookie. The field is a password field so it is not shown or kept in form history.
 */
export function loginPage(opts: { error?: string; info?: string } = {}): Html {
  return page(
    { title: 'Sign in' },
    html`${opts.error ? notice('error', opts.error) : ''}
      ${opts.info ? notice('info', opts.info) : ''}
      <p>
        The audit log is read with an audit token (<code>GATE_TOKEN_AUDIT</code> of this server).
      </p>
      <form method="post" action="/ui/login">
        <p>
          <label for="token">Audit token</label>
          <input
            id="token"
            name="token"
            type="password"
            autocomplete="current-password"
            required
            maxlength="4096"
          />
        </p>
        <p><button type="submit">Sign in</button></p>
      </form>`,
  );
}
