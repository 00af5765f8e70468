// admin.js - users, groups, permission targets (with a user's effective
// permissions on a path), access tokens, UI sessions and the audit log.
// Admins only: the API refuses everyone else whatever this page shows.
import { session, get, call, enc } from '../api.js';
import { h, mount, field, val, note, table, button, copyButton } from '../dom.js';
import { date, link } from '../util.js';

const TABS = {
  users: 'Users', groups: 'Groups', permissions: 'Permissions', tokens: 'Tokens', sessions: 'Sessions', audit: 'Audit log',
};
const ACTIONS = ['read', 'annotate', 'write', 'delete', 'manage'];

let ctx;

export async function render(main, r, tools) {
  const tab = TABS[r.parts[0]] ? r.parts[0] : 'users';
  ctx = { ...tools, main, r, msgs: h('div', { class: 'msgs' }), body: h('div') };
  main.append(h('h1', { text: `Admin: ${TABS[tab]}` }),
    h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Admin sections' },
      Object.entries(TABS).map(([k, label]) => h('a', { role: 'tab', href: link('admin', k), 'aria-selected': k === tab ? 'true' : 'false', text: label }))),
    ctx.msgs, ctx.body);
  try {
    await ({ users, groups, permissions, tokens, sessions, audit })[tab]();
  } catch (e) {
    err(e);
  }
}

function err(e) {
  mount(ctx.msgs, note('error', e.message));
}

function ok(text) {
  mount(ctx.msgs, note('ok', text));
  ctx.toast(text);
}

// A form that calls fn(form) on submit and shows its error in place.
function form(label, children, fn) {
  const out = h('div', { class: 'msgs' });
  const f = h('form', { class: 'card', 'aria-label': label }, h('h2', { text: label }), children, out);
  f.addEventListener('submit', async (e) => {
    e.preventDefault();
    mount(out);
    try {
      await fn(f, e);
    } catch (x) {
      mount(out, note('error', x.message));
    }
  });
  return f;
}

const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);

// ---- users ----

async function users() {
  const [names, groupNames] = await Promise.all([get('/api/security/users'), get('/api/security/groups')]);
  const detail = h('div');
  mount(ctx.body,
    h('div', { class: 'split' },
      h('div', {},
        h('p', {}, button('New user', () => userForm(null, groupNames, detail), { class: 'primary' })),
        table([{ label: 'User', cell: (u) => button(u.name, () => userForm(u.name, groupNames, detail), { class: 'link', 'aria-label': `Edit user ${u.name}` }) },
          { label: 'Realm', cell: (u) => u.realm || '' }], names, { 'aria-label': 'Users' })),
      detail));
}

async function userForm(name, groupNames, el) {
  const u = name ? await get(`/api/security/users/${enc(name)}`).catch((e) => { err(e); return null; }) : { groups: [] };
  if (!u) return;
  const groupBoxes = groupNames.map((g) => field(g.name, { type: 'checkbox', name: `g:${g.name}`, checked: (u.groups || []).includes(g.name) }));
  const f = form(name ? `User ${name}` : 'New user', [
    field('Name', { name: 'name', value: name || '', required: true, disabled: !!name, maxlength: 64 }),
    field('Email', { name: 'email', type: 'email', value: u.email || '' }),
    field(name ? 'New password (empty: unchanged)' : 'Password', { name: 'password', type: 'password', autocomplete: 'new-password', required: !name, minlength: 8 }),
    field('Administrator', { name: 'admin', type: 'checkbox', checked: u.admin }),
    field('Disabled', { name: 'disabled', type: 'checkbox', checked: u.disabled }),
    groupBoxes.length ? h('fieldset', {}, h('legend', { text: 'Groups' }), groupBoxes) : null,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', text: name ? 'Save' : 'Create' }),
      name ? button('Delete user', async () => {
        if (!window.confirm(`Delete user ${name}, its tokens and grants?`)) return;
        try {
          await call('DELETE', `/api/security/users/${enc(name)}`);
          ok(`Deleted user ${name}.`);
          await users();
        } catch (e) {
          err(e);
        }
      }, { class: 'danger' }) : null),
  ], async (fm) => {
    const n = name || val(fm, 'name');
    const doc = { email: val(fm, 'email'), admin: val(fm, 'admin'), disabled: val(fm, 'disabled'),
      groups: groupNames.map((g) => g.name).filter((g) => fm.elements.namedItem(`g:${g}`).checked) };
    const pw = fm.elements.password.value;
    if (pw) doc.password = pw;
    await call(name ? 'POST' : 'PUT', `/api/security/users/${enc(n)}`, { json: doc });
    ok(name ? `Saved user ${n}.` : `Created user ${n}.`);
    await users();
  });
  mount(el, f);
  f.querySelector('input:not([disabled])').focus();
}

// ---- groups ----

async function groups() {
  const names = await get('/api/security/groups');
  const detail = h('div');
  mount(ctx.body, h('div', { class: 'split' },
    h('div', {}, h('p', {}, button('New group', () => groupForm(null, detail), { class: 'primary' })),
      table([{ label: 'Group', cell: (g) => button(g.name, () => groupForm(g.name, detail), { class: 'link', 'aria-label': `Edit group ${g.name}` }) }], names, { 'aria-label': 'Groups' })),
    detail));
}

async function groupForm(name, el) {
  const g = name ? await get(`/api/security/groups/${enc(name)}`).catch((e) => { err(e); return null; }) : {};
  if (!g) return;
  const f = form(name ? `Group ${name}` : 'New group', [
    field('Name', { name: 'name', value: name || '', required: true, disabled: !!name }),
    field('Description', { name: 'description', value: g.description || '' }),
    field('Members', { name: 'users', value: (g.userNames || []).join(', '), hint: 'User names, comma-separated' }),
    field('New users join it', { name: 'autoJoin', type: 'checkbox', checked: g.autoJoin }),
    field('Members are administrators', { name: 'admin', type: 'checkbox', checked: g.adminPrivileges }),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', text: name ? 'Save' : 'Create' }),
      name ? button('Delete group', async () => {
        if (!window.confirm(`Delete group ${name}?`)) return;
        try {
          await call('DELETE', `/api/security/groups/${enc(name)}`);
          ok(`Deleted group ${name}.`);
          await groups();
        } catch (e) {
          err(e);
        }
      }, { class: 'danger' }) : null),
  ], async (fm) => {
    const n = name || val(fm, 'name');
    await call('PUT', `/api/security/groups/${enc(n)}`, { json: { description: val(fm, 'description'), autoJoin: val(fm, 'autoJoin'), adminPrivileges: val(fm, 'admin'), userNames: list(val(fm, 'users')) } });
    ok(`Saved group ${n}.`);
    await groups();
  });
  mount(el, f);
  f.querySelector('input:not([disabled])').focus();
}

// ---- permission targets ----

async function permissions() {
  const names = await get('/api/v2/security/permissions');
  const detail = h('div');
  mount(ctx.body,
    h('div', { class: 'split' },
      h('div', {}, h('p', {}, button('New permission target', () => targetForm(null, detail), { class: 'primary' })),
        table([{ label: 'Permission target', cell: (t) => button(t.name, () => targetForm(t.name, detail), { class: 'link', 'aria-label': `Edit permission target ${t.name}` }) }], names, { 'aria-label': 'Permission targets' })),
      detail),
    effective());
}

function grantRows(kind, grants) {
  const rows = h('div', { class: 'grants', 'data-kind': kind });
  const add = (who, acts) => {
    const row = h('fieldset', { class: 'grant' }, h('legend', { class: 'visually-hidden', text: `${kind} grant` }),
      field(kind === 'users' ? 'User' : 'Group', { name: 'who', value: who || '' }),
      ACTIONS.map((a) => field(a, { type: 'checkbox', name: `a:${a}`, checked: (acts || []).includes(a) })),
      button('Remove', () => row.remove(), { class: 'small' }));
    rows.append(row);
  };
  for (const [who, acts] of Object.entries(grants || {})) add(who, acts);
  return { el: h('div', {}, h('h3', { text: kind === 'users' ? 'Users' : 'Groups' }), rows,
    button(kind === 'users' ? 'Add a user' : 'Add a group', () => add('', ['read']), { class: 'small' })), rows };
}

function readGrants(rows) {
  const out = {};
  for (const row of rows.querySelectorAll('.grant')) {
    const who = row.querySelector('input[name=who]').value.trim();
    if (!who) continue;
    out[who] = ACTIONS.filter((a) => row.querySelector(`input[name="a:${a}"]`).checked);
  }
  return out;
}

async function targetForm(name, el) {
  const t = name ? await get(`/api/v2/security/permissions/${enc(name)}`).catch((e) => { err(e); return null; })
    : { repo: { repositories: ['ANY'], 'include-patterns': ['**'], 'exclude-patterns': [], actions: { users: {}, groups: {} } } };
  if (!t) return;
  const r = t.repo || {};
  const u = grantRows('users', (r.actions || {}).users);
  const g = grantRows('groups', (r.actions || {}).groups);
  const f = form(name ? `Permission target ${name}` : 'New permission target', [
    field('Name', { name: 'name', value: name || '', required: true, disabled: !!name }),
    field('Repositories', { name: 'repos', value: (r.repositories || []).join(', '), hint: 'Keys, or ANY, ANY LOCAL; comma-separated' }),
    field('Include patterns', { name: 'inc', value: (r['include-patterns'] || []).join(', '), hint: 'Ant patterns, e.g. org/acme/**' }),
    field('Exclude patterns', { name: 'exc', value: (r['exclude-patterns'] || []).join(', ') }),
    u.el, g.el,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', text: name ? 'Save' : 'Create' }),
      name ? button('Delete target', async () => {
        if (!window.confirm(`Delete permission target ${name}?`)) return;
        try {
          await call('DELETE', `/api/v2/security/permissions/${enc(name)}`);
          ok(`Deleted permission target ${name}.`);
          await permissions();
        } catch (e) {
          err(e);
        }
      }, { class: 'danger' }) : null),
  ], async (fm) => {
    const n = name || val(fm, 'name');
    const doc = { name: n, repo: { repositories: list(val(fm, 'repos')), 'include-patterns': list(val(fm, 'inc')), 'exclude-patterns': list(val(fm, 'exc')), actions: { users: readGrants(u.rows), groups: readGrants(g.rows) } } };
    await call('PUT', `/api/v2/security/permissions/${enc(n)}`, { json: doc });
    ok(`Saved permission target ${n}.`);
    await permissions();
  });
  mount(el, f);
}

function effective() {
  const out = h('div', { 'aria-live': 'polite' });
  const f = form('Effective permissions', [
    h('p', { class: 'muted', text: 'What a user may do on a path, from every permission target that names it or its groups.' }),
    h('div', { class: 'row3' }, field('User', { name: 'user', required: true }), field('Repository', { name: 'repo', required: true }), field('Path', { name: 'path' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit', text: 'Show' })), out,
  ], async (fm) => {
    const q = new URLSearchParams({ repo: val(fm, 'repo'), path: val(fm, 'path'), user: val(fm, 'user') });
    const res = await get(`/api/security/permissions/effective?${q}`);
    mount(out, h('p', { class: 'effective' }, h('strong', { text: res.user }), ' on ', h('code', { text: `${res.repo}/${res.path}` }), ': ',
      res.actions && res.actions.length ? res.actions.map((a) => h('span', { class: 'badge', text: a })) : h('em', { text: 'nothing' })));
  });
  return f;
}

// ---- tokens ----

async function tokens() {
  const res = await get('/api/security/token');
  const shown = h('div', { 'aria-live': 'polite' });
  const f = form('New access token', [
    h('div', { class: 'row3' },
      field('User', { name: 'username', value: session.user, required: true }),
      field('Scope', { name: 'scope', type: 'select', options: [{ value: 'applied-permissions/user', label: "the user's permissions" }, { value: 'applied-permissions/admin', label: 'admin (admin users only)' }] }),
      field('Expires in (seconds)', { name: 'expires', type: 'number', value: '3600', min: '0', hint: '0: never (admins only)' })),
    field('Description', { name: 'description' }),
    field('Refreshable', { name: 'refreshable', type: 'checkbox' }),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', text: 'Create token' })), shown,
  ], async (fm) => {
    const t = await call('POST', '/api/security/token', { form: { username: val(fm, 'username'), scope: val(fm, 'scope'), expires_in: val(fm, 'expires'), description: val(fm, 'description'), refreshable: val(fm, 'refreshable') ? 'true' : 'false' } });
    mount(shown, h('div', { class: 'note ok', role: 'status' },
      h('p', { text: 'Copy the token now: it is shown only once.' }),
      h('p', {}, h('code', { class: 'secret', id: 'new-token', text: t.access_token }), copyButton(t.access_token)),
      t.refresh_token ? h('p', {}, 'Refresh token: ', h('code', { class: 'secret', text: t.refresh_token }), copyButton(t.refresh_token)) : null));
    const again = await get('/api/security/token');
    mount(tableEl, tokenTable(again.tokens || []));
  });
  const tableEl = h('div', {}, tokenTable(res.tokens || []));
  mount(ctx.body, f, h('h2', { text: 'Tokens' }), tableEl);
}

function tokenTable(list_) {
  if (!list_.length) return note('info', 'No tokens.');
  return table([
    { label: 'Id', cell: (t) => h('code', { text: t.token_id }) },
    { label: 'User', cell: (t) => t.subject },
    { label: 'Scope', cell: (t) => t.scope },
    { label: 'Description', cell: (t) => t.description || '' },
    { label: 'Issued', cell: (t) => date(typeof t.issued_at === 'number' ? t.issued_at * 1000 : t.issued_at) },
    { label: 'Expires', cell: (t) => (t.expiry ? date(typeof t.expiry === 'number' ? t.expiry * 1000 : t.expiry) : 'never') },
    { label: 'State', cell: (t) => (t.revoked ? 'revoked' : 'active') },
    {
      label: 'Actions',
      cell: (t) => (t.revoked ? '' : button('Revoke', async () => {
        try {
          await call('POST', '/api/security/token/revoke', { form: { token_id: t.token_id } });
          ok(`Revoked token ${t.token_id}.`);
          await tokens();
        } catch (e) {
          err(e);
        }
      }, { class: 'danger', 'aria-label': `Revoke token ${t.token_id}` })),
    },
  ], list_, { 'aria-label': 'Access tokens' });
}

// ---- sessions ----

async function sessions() {
  const res = await get('/api/ui/sessions');
  const rows = res.sessions || [];
  mount(ctx.body, rows.length ? table([
    { label: 'User', cell: (s) => s.user },
    { label: 'From', cell: (s) => s.client },
    { label: 'Signed in', cell: (s) => date(s.created) },
    { label: 'Expires', cell: (s) => date(s.expires) },
    { label: 'How', cell: (s) => (s.withToken ? 'access token' : 'password') },
    { label: 'State', cell: (s) => (s.revoked ? 'revoked' : s.current ? 'this session' : 'active') },
    {
      label: 'Actions',
      cell: (s) => (s.revoked || s.current ? '' : button('Revoke', async () => {
        try {
          await call('DELETE', `/api/ui/sessions/${enc(s.id)}`);
          ok(`Revoked the session of ${s.user}.`);
          await sessions();
        } catch (e) {
          err(e);
        }
      }, { class: 'danger', 'aria-label': `Revoke session ${s.id} of ${s.user}` })),
    },
  ], rows, { 'aria-label': 'Sessions' }) : note('info', 'No sessions.'));
}

// ---- audit ----

async function audit() {
  const q = ctx.r.query;
  const out = h('div', { 'aria-live': 'polite' });
  const f = form('Filter', [
    h('div', { class: 'row3' },
      field('User', { name: 'user', value: q.get('user') || '' }),
      field('Action', { name: 'action', type: 'select', options: [{ value: '', label: 'any' }, ...['login', 'login_failed', 'logout', 'deploy', 'overwrite', 'delete', 'properties', 'copy', 'move', 'restore', 'security', 'token_create', 'token_refresh', 'token_revoke', 'session_revoke'].map((a) => ({ value: a, label: a, selected: a === q.get('action') }))] }),
      field('Limit', { name: 'limit', type: 'number', value: q.get('limit') || '100', min: '1', max: '10000' })),
    h('div', { class: 'row3' },
      field('From', { name: 'from', type: 'datetime-local', value: q.get('from') || '' }),
      field('To', { name: 'to', type: 'datetime-local', value: q.get('to') || '' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', text: 'Show' })),
  ], async (fm) => {
    const p = new URLSearchParams();
    for (const k of ['user', 'action', 'limit', 'from', 'to']) if (val(fm, k)) p.set(k, val(fm, k));
    location.hash = `${link('admin', 'audit')}?${p}`;
  });
  mount(ctx.body, f, out);
  const p = new URLSearchParams();
  for (const k of ['user', 'action']) if (q.get(k)) p.set(k, q.get(k));
  p.set('limit', q.get('limit') || '100');
  for (const k of ['from', 'to']) if (q.get(k)) p.set(k, String(new Date(q.get(k)).getTime()));
  const res = await get(`/api/audit?${p}`);
  const rows = res.entries || [];
  mount(out, rows.length ? table([
    { label: 'Time', cell: (e) => date(e.time) },
    { label: 'User', cell: (e) => e.user },
    { label: 'Action', cell: (e) => e.action },
    { label: 'Where', cell: (e) => (e.repo ? h('span', { class: 'mono', text: `${e.repo}/${e.path || ''}` }) : '') },
    { label: 'Detail', cell: (e) => e.detail || '' },
    { label: 'Client', cell: (e) => e.client || '' },
    { label: 'Node', cell: (e) => e.node || '' },
  ], rows, { 'aria-label': 'Audit log' }) : note('info', 'No entries.'));
}
