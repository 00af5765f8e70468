// login.js - sign in with a user name and password, or an access token.
import { session, signIn } from '../api.js';
import { h, field, note, val, mount } from '../dom.js';

export function render(main, r, { refreshSession }) {
  let withToken = false;
  const msg = h('div', { class: 'msgs' });
  const fields = h('div');
  const form = h('form', { class: 'card narrow', 'aria-labelledby': 'login-h' }, fields,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', text: 'Sign in' }),
      h('button', {
        type: 'button',
        class: 'link',
        onclick: () => { withToken = !withToken; draw(); },
        id: 'login-mode',
      })),
    msg);
  function draw() {
    mount(fields, withToken
      ? field('Access token', { name: 'token', type: 'password', autocomplete: 'off', required: true, hint: 'A token from Admin > Tokens or POST /api/security/token.' })
      : [field('User name', { name: 'user', autocomplete: 'username', required: true, autofocus: true }),
        field('Password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })]);
    form.querySelector('#login-mode').textContent = withToken ? 'Sign in with a password instead' : 'Sign in with an access token instead';
    fields.querySelector('input').focus();
  }
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    mount(msg);
    const b = form.querySelector('button[type=submit]');
    b.disabled = true;
    try {
      await signIn(withToken ? { token: val(form, 'token') } : { user: val(form, 'user'), password: form.elements.password.value });
      await refreshSession();
      const back = sessionStorage.getItem('granary.back');
      sessionStorage.removeItem('granary.back');
      location.hash = back && !back.startsWith('#/login') ? back : '#/repos';
    } catch (err) {
      mount(msg, note('error', err.status === 401 ? 'Sign-in failed: wrong user name, password or token.'
        : err.status === 429 ? `Too many failed sign-ins: ${err.message}` : err.message));
      b.disabled = false;
    }
  });
  main.append(h('h1', { id: 'login-h', text: 'Sign in' }),
    session.anonymousAccess ? h('p', {}, 'Anonymous browsing is on: ', h('a', { href: '#/repos', text: 'browse without signing in' }), '.') : null,
    form);
  draw();
}
