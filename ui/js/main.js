// main.js - the shell: who is signed in, the navigation, and the screen the
// address names (#/repos, #/browse/<repo>/<path>, #/search, #/deploy,
// #/trash, #/admin/<tab>, #/cluster, #/login). Screens load on first use,
// so the first page load stays small.
import { session, whoami, signOut } from './api.js';
import { h, mount, note, button } from './dom.js';
import { route } from './util.js';

const SCREENS = {
  repos: { label: 'Repositories', load: () => import('./views/repos.js') },
  browse: { label: 'Browse', load: () => import('./views/browse.js') },
  search: { label: 'Search', load: () => import('./views/search.js') },
  deploy: { label: 'Deploy', load: () => import('./views/deploy.js'), signedIn: true },
  trash: { label: 'Trash', load: () => import('./views/trash.js'), signedIn: true },
  admin: { label: 'Admin', load: () => import('./views/admin.js'), admin: true },
  cluster: { label: 'Cluster', load: () => import('./views/cluster.js'), signedIn: true },
  login: { load: () => import('./views/login.js') },
};

const main = document.getElementById('main');
let cleanup = null;
let rendering = 0;
let current = null; // {name, mod}: the screen shown

export function toast(text) {
  const t = document.getElementById('toast');
  t.textContent = text;
  t.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove('show'), 4000);
}

function renderNav() {
  const cur = route().screen || 'repos';
  const items = Object.entries(SCREENS).filter(([k, s]) => s.label
    && (!s.signedIn || !session.anonymous) && (!s.admin || session.admin));
  mount(document.getElementById('nav'), h('ul', {},
    items.map(([k, s]) => h('li', {}, h('a', { href: `#/${k}`, 'aria-current': k === cur ? 'page' : null, text: s.label })))));
  const who = document.getElementById('who');
  if (session.anonymous) {
    mount(who, h('a', { href: '#/login', class: 'button', text: 'Sign in' }));
  } else {
    mount(who, h('span', { class: 'user', title: session.admin ? 'administrator' : 'user' },
      session.user, session.admin ? ' (admin)' : ''),
    button('Sign out', async () => {
      try {
        await signOut();
      } catch (e) {
        toast(e.message);
      }
      location.hash = session.anonymousAccess ? '#/repos' : '#/login';
      renderNav();
      render();
    }));
  }
}

export async function render() {
  const r0 = route();
  if (current && current.mod.update && (r0.screen || 'repos') === current.name) {
    /* the same screen, another item (browse): it updates itself */
    try {
      if (await current.mod.update(r0)) return;
    } catch (e) {
      toast(e.message);
      return;
    }
  }
  const n = ++rendering;
  if (cleanup) {
    try {
      cleanup();
    } catch { /* the old screen is gone anyway */ }
    cleanup = null;
  }
  const r = route();
  let name = r.screen || 'repos';
  if (!SCREENS[name]) name = 'repos';
  const s = SCREENS[name];
  current = null;
  if (name !== 'login' && session.anonymous && (!session.anonymousAccess || s.signedIn || s.admin)) {
    name = 'login';
  } else if (s.admin && !session.admin) {
    renderNav();
    mount(main, h('h1', { text: 'Not allowed' }), note('error', 'This screen is for administrators.'));
    return;
  }
  renderNav();
  try {
    const mod = await SCREENS[name].load();
    if (n !== rendering) return; /* another screen was asked for meanwhile */
    main.replaceChildren();
    current = { name, mod };
    cleanup = (await mod.render(main, r, { toast, refreshSession })) || null;
    document.title = `${main.querySelector('h1')?.textContent || 'granary'} - granary`;
  } catch (e) {
    if (n !== rendering) return;
    mount(main, h('h1', { text: 'Something went wrong' }), note('error', e.message || String(e)));
  }
}

export async function refreshSession() {
  try {
    await whoami();
  } catch (e) {
    mount(main, h('h1', { text: 'granary is not reachable' }), note('error', e.message));
    return false;
  }
  renderNav();
  return true;
}

window.addEventListener('hashchange', () => render());
window.addEventListener('granary:session-ended', async () => {
  await refreshSession();
  if (session.anonymous) {
    sessionStorage.setItem('granary.back', location.hash);
    location.hash = '#/login';
    toast('Your session ended. Sign in again.');
  }
});
document.getElementById('skip').addEventListener('click', () => main.focus());

(async () => {
  if (await refreshSession()) {
    if (session.ended) toast('Your session ended. Sign in again.');
    render();
  }
})();
