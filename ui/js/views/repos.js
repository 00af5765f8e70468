// repos.js - the repositories: key, description, package type, kind, and
// (for admins, from /api/storageinfo) artifact count and size; admins
// create, edit and delete them.
import { session, get, call, enc } from '../api.js';
import { h, mount, field, val, note, table, button } from '../dom.js';
import { bytes, num, browseLink } from '../util.js';

const TYPES = ['generic', 'maven', 'npm', 'pypi', 'docker'];

export async function render(main, r, { toast }) {
  const msgs = h('div', { class: 'msgs' });
  const body = h('div');
  main.append(h('h1', { text: 'Repositories' }), msgs, body);

  async function load() {
    const [repos, info] = await Promise.all([
      get('/api/repositories'),
      session.admin ? get('/api/storageinfo').catch(() => null) : null,
    ]);
    const counts = {};
    for (const x of (info && info.repositoriesSummaryList) || []) counts[x.repoKey] = x;
    const cols = [
      { label: 'Key', cell: (x) => h('a', { href: browseLink(x.key, ''), text: x.key }) },
      { label: 'Description', cell: (x) => x.description || '' },
      { label: 'Package type', cell: (x) => x.packageType || '' },
      { label: 'Kind', cell: (x) => (x.type || '').toLowerCase() },
    ];
    if (info) {
      cols.push({ label: 'Artifacts', class: 'num', cell: (x) => (counts[x.key] ? num(counts[x.key].filesCount) : '') });
      cols.push({ label: 'Size', class: 'num', cell: (x) => (counts[x.key] ? bytes(counts[x.key].usedSpaceInBytes) : '') });
    }
    if (session.admin) {
      cols.push({
        label: 'Actions',
        cell: (x) => h('span', { class: 'row-actions' },
          button('Edit', () => edit(x.key), { 'aria-label': `Edit ${x.key}` }),
          button('Delete', () => remove(x.key), { class: 'danger', 'aria-label': `Delete ${x.key}` })),
      });
    }
    mount(body,
      session.admin ? h('p', {}, button('New repository', () => edit(null), { class: 'primary' })) : null,
      repos.length ? table(cols, repos, { 'aria-label': 'Repositories' })
        : note('info', session.anonymous ? 'No repository is readable anonymously. Sign in to see more.' : 'No repositories yet.'),
      info ? h('p', { class: 'muted' }, `${num(info.binariesSummary.artifactsCount)} artifacts, ${info.binariesSummary.artifactsSize}; `
        + `${num(info.binariesSummary.binariesCount)} distinct binaries, ${info.binariesSummary.binariesSize}.`) : null);
  }

  async function edit(key) {
    let cfg = { key: '', packageType: 'generic', description: '', includesPattern: '**', excludesPattern: '' };
    if (key) {
      try {
        cfg = await get(`/api/repositories/${enc(key)}`);
      } catch (e) {
        mount(msgs, note('error', e.message));
        return;
      }
    }
    const out = h('div', { class: 'msgs' });
    const form = h('form', { class: 'card', 'aria-label': key ? `Edit repository ${key}` : 'New repository' },
      h('h2', { text: key ? `Edit ${key}` : 'New repository' }),
      field('Key', { name: 'key', value: cfg.key, required: true, disabled: !!key, pattern: '[A-Za-z0-9][A-Za-z0-9._-]*', maxlength: 64, hint: 'Letters, digits, . _ -' }),
      field('Package type', { name: 'packageType', type: 'select', disabled: !!key, options: TYPES.map((t) => ({ value: t, label: t, selected: t === cfg.packageType })) }),
      field('Description', { name: 'description', value: cfg.description || '' }),
      field('Includes pattern', { name: 'includesPattern', value: cfg.includesPattern || '**', hint: 'Ant patterns, comma-separated' }),
      field('Excludes pattern', { name: 'excludesPattern', value: cfg.excludesPattern || '' }),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', text: key ? 'Save' : 'Create' }),
        button('Cancel', () => load().catch(showErr))),
      out);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const k = key || val(form, 'key');
      const doc = { description: val(form, 'description'), includesPattern: val(form, 'includesPattern'), excludesPattern: val(form, 'excludesPattern') };
      if (!key) Object.assign(doc, { key: k, rclass: 'local', packageType: val(form, 'packageType') });
      try {
        await call(key ? 'POST' : 'PUT', `/api/repositories/${enc(k)}`, { json: doc });
        toast(key ? `Saved ${k}.` : `Created repository ${k}.`);
        mount(msgs);
        await load();
      } catch (err) {
        mount(out, note('error', err.message));
      }
    });
    mount(body, form);
    form.querySelector('input:not([disabled])').focus();
  }

  async function remove(key) {
    const out = h('div', { class: 'msgs' });
    const form = h('form', { class: 'card', 'aria-label': `Delete ${key}` },
      h('h2', { text: `Delete ${key}?` }),
      h('p', {}, 'This deletes the repository and every artifact in it. Type its key to confirm.'),
      field('Key', { name: 'confirm', required: true, autocomplete: 'off' }),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'danger', text: 'Delete' }), button('Cancel', () => load().catch(showErr))),
      out);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (val(form, 'confirm') !== key) {
        mount(out, note('error', 'The key does not match.'));
        return;
      }
      try {
        await call('DELETE', `/api/repositories/${enc(key)}`);
        toast(`Deleted ${key}.`);
        await load();
      } catch (err) {
        mount(out, note('error', err.message));
      }
    });
    mount(body, form);
    form.querySelector('input').focus();
  }

  function showErr(e) {
    mount(msgs, note('error', e.message));
  }
  await load().catch(showErr);
}
