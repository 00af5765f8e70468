// search.js - quick (file name), checksum, property and GAVC searches
// (/api/search/..., docs/api.md), each result a link into the browser.
import { get } from '../api.js';
import { h, mount, field, note, table } from '../dom.js';
import { bytes, date, browseLink } from '../util.js';

const KINDS = {
  name: { label: 'Quick (name)', fields: [['q', 'File name', 'e.g. lib or *.jar']] },
  checksum: { label: 'Checksum', fields: [['q', 'SHA-256, SHA-1 or MD5', 'hex digits']] },
  prop: { label: 'Property', fields: [['key', 'Key', ''], ['value', 'Value', 'empty or * for any value']] },
  gavc: { label: 'GAVC', fields: [['g', 'Group', ''], ['a', 'Artifact', ''], ['v', 'Version', ''], ['c', 'Classifier', '']] },
};

function searchUrl(kind, p) {
  const q = new URLSearchParams();
  if (kind === 'name') {
    q.set('name', p.get('q') || '');
    return `/api/search/artifact?${q}`;
  }
  if (kind === 'checksum') {
    const v = (p.get('q') || '').trim().toLowerCase();
    const algo = v.length === 64 ? 'sha256' : v.length === 40 ? 'sha1' : v.length === 32 ? 'md5' : 'sha256';
    q.set(algo, v);
    return `/api/search/checksum?${q}`;
  }
  if (kind === 'prop') {
    q.set(p.get('key') || '', p.get('value') || '');
    return `/api/search/prop?${q}`;
  }
  for (const k of ['g', 'a', 'v', 'c']) if (p.get(k)) q.set(k, p.get(k));
  return `/api/search/gavc?${q}`;
}

// "<base>/api/storage/<repo>/<path>" -> [repo, path]
function repoPath(uri) {
  const m = String(uri).match(/\/api\/storage\/([^/]+)\/?(.*)$/);
  if (!m) return [null, null];
  const dec = (s) => s.split('/').map((x) => {
    try {
      return decodeURIComponent(x);
    } catch {
      return x;
    }
  }).join('/');
  return [dec(m[1]), dec(m[2])];
}

export async function render(main, r) {
  const kind = KINDS[r.parts[0]] ? r.parts[0] : 'name';
  const p = r.query;
  const results = h('div', { 'aria-live': 'polite' });
  const tabs = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Kind of search' },
    Object.entries(KINDS).map(([k, x]) => h('a', { role: 'tab', href: `#/search/${k}`, 'aria-selected': k === kind ? 'true' : 'false', text: x.label })));
  const form = h('form', { class: 'card search', role: 'search', 'aria-label': KINDS[kind].label },
    KINDS[kind].fields.map(([name, label, hint]) => field(label, { name, value: p.get(name) || '', hint: hint || null })),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', text: 'Search' })));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [name] of KINDS[kind].fields) q.set(name, form.elements[name].value.trim());
    location.hash = `#/search/${kind}?${q}`;
  });
  main.append(h('h1', { text: 'Search' }), tabs, form, results);
  if (![...p.keys()].length) {
    form.querySelector('input').focus();
    return;
  }
  mount(results, h('p', { class: 'loading', text: 'Searching…' }));
  try {
    const res = await get(searchUrl(kind, p), { headers: { 'X-Result-Detail': 'info' } });
    const rows = (res.results || []).map((x) => {
      const [repo, path] = repoPath(x.uri);
      return { ...x, repo: x.repo || repo, path: x.path ? String(x.path).replace(/^\//, '') : path };
    });
    mount(results, rows.length ? [
      h('p', { class: 'muted', text: `${rows.length} result${rows.length === 1 ? '' : 's'}${rows.length >= 1000 ? ' (the first 1000)' : ''}` }),
      table([
        { label: 'Repository', cell: (x) => x.repo },
        { label: 'Path', cell: (x) => h('a', { href: browseLink(x.repo, x.path), class: 'mono', text: x.path }) },
        { label: 'Size', class: 'num', cell: (x) => (x.size !== undefined ? bytes(Number(x.size)) : '') },
        { label: 'Modified', cell: (x) => date(x.lastModified) },
      ], rows, { 'aria-label': 'Results' })] : note('info', 'Nothing found.'));
  } catch (e) {
    mount(results, note(e.status === 404 ? 'info' : 'error', e.status === 404 && /no results/i.test(e.message) ? 'Nothing found.' : e.message));
  }
}
