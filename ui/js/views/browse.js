// browse.js - a tree per repository (folders and files, a page of
// PAGE children at a time, so a folder of 100,000 files stays quick), and
// the selected item's details: checksums, who and when, properties, usage
// snippets, download, delete, copy and move.
import { session, get, call, enc } from '../api.js';
import { h, mount, note, button, field, val, copyButton } from '../dom.js';
import { bytes, date, num, browseLink, basename } from '../util.js';
import { snippets } from '../snippets.js';
import { propsEditor } from '../props.js';

export const PAGE = 500;

function listUrl(repo, path, offset) {
  return `/api/storage/${enc(repo)}${path ? `/${enc(path)}` : ''}?list&listFolders=1&offset=${offset}&limit=${PAGE}`;
}

let state = null; // {repo, cfg, tree, details, nodes: Map path -> node, toast}

export async function render(main, r, { toast }) {
  const repo = r.parts[0];
  if (!repo) {
    const repos = await get('/api/repositories');
    main.append(h('h1', { text: 'Browse' }),
      repos.length ? h('ul', { class: 'repo-list' }, repos.map((x) => h('li', {},
        h('a', { href: browseLink(x.key, ''), text: x.key }), ' ', h('span', { class: 'muted', text: x.packageType }))))
        : note('info', 'No repository you can read.'));
    state = null;
    return null;
  }
  const tree = h('ul', { role: 'tree', class: 'tree', 'aria-label': `Files of ${repo}` });
  const details = h('section', { class: 'details', 'aria-live': 'polite', 'aria-label': 'Details' });
  main.append(h('h1', {}, 'Browse ', h('span', { class: 'mono', text: repo })),
    h('div', { class: 'browse' }, h('div', { class: 'tree-pane' }, tree), details));
  state = { repo, cfg: null, tree, details, nodes: new Map(), toast };
  tree.addEventListener('keydown', keys);
  try {
    state.cfg = await get(`/api/repositories/${enc(repo)}`);
  } catch (e) {
    mount(details, note('error', e.message));
    state.cfg = { packageType: 'generic' };
  }
  const root = node('', true, repo, 0);
  tree.append(root.li);
  await expand(root);
  await select(r.parts.slice(1).join('/'), true);
  return () => { state = null; };
}

// A hash change inside this screen (main.js): the same tree, another item.
export async function update(r) {
  if (!state || r.parts[0] !== state.repo) return false;
  await select(r.parts.slice(1).join('/'), false);
  return true;
}

function node(path, folder, label, level) {
  const li = h('li', { role: 'treeitem', tabindex: '-1', 'aria-level': level + 1, 'aria-selected': 'false', class: folder ? 'folder' : 'file' });
  const row = h('span', { class: 'row' },
    h('span', { class: 'twisty', 'aria-hidden': 'true', text: folder ? '▸' : '' }),
    h('span', { class: 'name', text: label }));
  li.append(row);
  const n = { path, folder, li, level, expanded: false, loaded: 0, total: null, group: null, label };
  if (folder) li.setAttribute('aria-expanded', 'false');
  row.addEventListener('click', (e) => {
    e.stopPropagation();
    if (folder && (e.target.classList.contains('twisty') || n.path === '')) toggle(n);
    else if (folder && !n.expanded) expand(n);
    location.hash = browseLink(state.repo, path);
  });
  li.addEventListener('focus', () => { for (const x of state.tree.querySelectorAll('[tabindex="0"]')) x.tabIndex = -1; li.tabIndex = 0; });
  state.nodes.set(path, n);
  return n;
}

async function toggle(n) {
  if (n.expanded) collapse(n);
  else await expand(n);
}

function collapse(n) {
  n.expanded = false;
  n.li.setAttribute('aria-expanded', 'false');
  n.li.querySelector('.twisty').textContent = '▸';
  if (n.group) n.group.hidden = true;
}

async function expand(n) {
  if (!n.folder) return;
  n.expanded = true;
  n.li.setAttribute('aria-expanded', 'true');
  n.li.querySelector('.twisty').textContent = '▾';
  if (n.group) {
    n.group.hidden = false;
    return;
  }
  n.group = h('ul', { role: 'group' });
  n.li.append(n.group);
  await more(n);
}

// The next page of n's children.
async function more(n) {
  const s = state;
  let page;
  try {
    page = await get(listUrl(s.repo, n.path, n.loaded));
  } catch (e) {
    /* a folder the caller may not list (permissions on paths below it only):
     * the tree still leads to what the address names, below */
    n.denied = e.status === 403 || e.status === 401;
    n.group.append(h('li', { role: 'none', class: 'denied' },
      n.denied ? h('small', { class: 'muted', text: `Not listable: ${e.message}` }) : note('error', e.message)));
    return;
  }
  if (state !== s) return;
  n.group.querySelector(':scope > li.more')?.remove();
  const frag = document.createDocumentFragment();
  for (const f of page.files) {
    const name = f.uri.replace(/^\//, '');
    const path = n.path ? `${n.path}/${name}` : name;
    const c = node(path, f.folder, name, n.level + 1);
    c.entry = f;
    if (!f.folder) c.li.querySelector('.row').append(h('span', { class: 'size muted', text: bytes(f.size) }));
    frag.append(c.li);
  }
  n.loaded += page.files.length;
  n.total = page.total;
  if (n.loaded < n.total) {
    const li = h('li', { role: 'treeitem', tabindex: '-1', class: 'more', 'aria-level': n.level + 2 },
      h('span', { class: 'row' }, `Show ${Math.min(PAGE, n.total - n.loaded)} more (${num(n.loaded)} of ${num(n.total)} shown)`));
    li.addEventListener('click', (e) => { e.stopPropagation(); more(n); });
    li.moreOf = n;
    frag.append(li);
  }
  if (page.total === 0) frag.append(h('li', { role: 'none', class: 'muted', text: 'empty' }));
  n.group.append(frag);
}

// Make path visible in the tree (expanding its folders), mark it, show its details.
async function select(path, first) {
  const s = state;
  const parts = path ? path.split('/') : [];
  let cur = s.nodes.get('');
  for (let i = 0; i < parts.length; i++) {
    const p = parts.slice(0, i + 1).join('/');
    if (cur.folder && !cur.expanded) await expand(cur);
    if (state !== s) return;
    let next = s.nodes.get(p);
    if (!next && cur.denied) {
      /* the parent cannot be listed: the step the address names stands in for it */
      let folder = i < parts.length - 1;
      if (!folder) {
        try {
          folder = !!(await get(`/api/storage/${enc(s.repo)}/${enc(p)}`)).children;
        } catch { /* shown by the details below */ }
      }
      next = node(p, folder, parts[i], cur.level + 1);
      cur.group.append(next.li);
    }
    if (!next) break; /* on a later page of a large folder, or gone */
    cur = next;
  }
  for (const x of s.tree.querySelectorAll('[aria-selected="true"]')) x.setAttribute('aria-selected', 'false');
  const n = s.nodes.get(path);
  if (n && n.folder && !n.expanded && first) await expand(n); /* an address naming a folder opens it */
  if (n) {
    n.li.setAttribute('aria-selected', 'true');
    n.li.tabIndex = 0;
    if (!first) n.li.focus({ preventScroll: false });
    n.li.scrollIntoView({ block: 'nearest' });
  }
  await showDetails(path, n);
}

async function showDetails(path, n) {
  const s = state;
  const d = s.details;
  mount(d, h('p', { class: 'loading', text: 'Loading…' }));
  let info;
  try {
    info = path ? await get(`/api/storage/${enc(s.repo)}/${enc(path)}`) : null;
  } catch (e) {
    mount(d, note('error', e.message));
    return;
  }
  if (state !== s) return;
  if (!info || info.children) return folderDetails(path, n);
  fileDetails(path, info);
}

function dl(rows) {
  return h('dl', { class: 'facts' }, rows.filter(Boolean).map(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)]));
}

function hash(label, value) {
  return h('span', { class: 'hash' }, h('code', { 'data-hash': label, text: value || '' }), value ? copyButton(value) : null);
}

function fileDetails(path, info) {
  const s = state;
  const c = info.checksums || {};
  const href = `/${enc(s.repo)}/${enc(path)}`;
  const origin = location.origin;
  const props = h('div', { class: 'props' });
  const actions = h('div', { class: 'actions' },
    h('a', { class: 'button primary', href, download: basename(path), text: 'Download' }),
    session.anonymous ? null : button('Copy or move…', () => copyMove(path, false), {}),
    session.anonymous ? null : button('Delete…', () => remove(path, false), { class: 'danger' }));
  mount(s.details,
    h('h2', { class: 'mono', text: basename(path) }),
    h('p', { class: 'mono muted', text: `${s.repo}/${path}` }),
    actions,
    h('div', { class: 'msgs', id: 'detail-msgs' }),
    dl([
      ['Size', `${bytes(Number(info.size))} (${num(info.size)} bytes)`],
      ['SHA-256', hash('sha256', c.sha256)],
      ['SHA-1', hash('sha1', c.sha1)],
      ['MD5', hash('md5', c.md5)],
      ['Type', info.mimeType || ''],
      ['Created', `${date(info.created)} by ${info.createdBy || '?'}`],
      ['Modified', `${date(info.lastModified)} by ${info.modifiedBy || '?'}`],
    ]),
    props,
    h('h3', { text: 'Use it' }),
    snippets(origin, s.repo, s.cfg && s.cfg.packageType, path, `${origin}${href}`, !session.anonymous).map((x) => h('figure', { class: 'snippet' },
      h('figcaption', {}, x.title, ' ', copyButton(x.text)), h('pre', {}, h('code', { text: x.text })))));
  propsEditor(props, s.repo, path, false, s.toast);
}

function folderDetails(path, n) {
  const s = state;
  const props = h('div', { class: 'props' });
  const deployHref = `#/deploy?repo=${encodeURIComponent(s.repo)}&path=${encodeURIComponent(path)}`;
  mount(s.details,
    h('h2', { class: 'mono', text: path ? `${basename(path)}/` : `${s.repo} (root)` }),
    h('p', { class: 'mono muted', text: `${s.repo}/${path}` }),
    h('div', { class: 'actions' },
      session.anonymous ? null : h('a', { class: 'button primary', href: deployHref, text: 'Deploy here' }),
      session.anonymous || !path ? null : button('Copy or move…', () => copyMove(path, true)),
      session.anonymous || !path ? null : button('Delete…', () => remove(path, true), { class: 'danger' })),
    h('div', { class: 'msgs', id: 'detail-msgs' }),
    n && n.total !== null ? dl([['Children', num(n.total)], n.entry ? ['Last modified below', date(n.entry.lastModified)] : null]) : null,
    props);
  propsEditor(props, s.repo, path, true, s.toast);
}

function parentOf(path) {
  return path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
}

function remove(path, folder) {
  const s = state;
  const out = h('div', { class: 'msgs' });
  const form = h('form', { class: 'card', 'aria-label': 'Delete' },
    h('p', {}, `Delete ${folder ? 'the folder' : ''} `, h('code', { text: `${s.repo}/${path}` }), folder ? ' and everything below it' : '', '? It goes to the trash, where it can be restored.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'danger', text: 'Delete' }), button('Cancel', () => form.remove())),
    out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await call('DELETE', `/${enc(s.repo)}/${enc(path)}${folder ? '/' : ''}`);
      s.toast(`Deleted ${path}; it is in the trash.`);
      reloadFolder(parentOf(path));
      location.hash = browseLink(s.repo, parentOf(path));
    } catch (err) {
      mount(out, note('error', err.message));
    }
  });
  s.details.querySelector('#detail-msgs').replaceChildren(form);
  form.querySelector('button').focus();
}

async function copyMove(path, folder) {
  const s = state;
  let repos = [];
  try {
    repos = await get('/api/repositories');
  } catch { /* the field stays free text */ }
  const out = h('div', { class: 'msgs' });
  const form = h('form', { class: 'card', 'aria-label': 'Copy or move' },
    h('h3', { text: `Copy or move ${folder ? 'folder' : 'file'}` }),
    field('Target repository', { name: 'repo', type: 'select', options: repos.map((x) => ({ value: x.key, label: x.key, selected: x.key === s.repo })) }),
    field('Target path', { name: 'path', value: path, required: true, hint: 'An existing folder receives it under its own name' }),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', value: 'copy', text: 'Copy' }),
      h('button', { type: 'submit', value: 'move', text: 'Move' }),
      button('Cancel', () => form.remove())),
    out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const op = e.submitter && e.submitter.value === 'move' ? 'move' : 'copy';
    const to = `/${val(form, 'repo')}/${val(form, 'path').replace(/^\/+/, '')}`;
    try {
      const res = await call('POST', `/api/${op}/${enc(s.repo)}/${enc(path)}?to=${encodeURIComponent(to)}`);
      const m = (res && res.messages && res.messages[0] && res.messages[0].message) || `${op} done`;
      s.toast(m);
      mount(out, note('ok', m));
      if (op === 'move') {
        reloadFolder(parentOf(path));
        location.hash = browseLink(s.repo, parentOf(path));
      }
    } catch (err) {
      mount(out, note('error', err.message));
    }
  });
  s.details.querySelector('#detail-msgs').replaceChildren(form);
  form.querySelector('select, input').focus();
}

// Drop what the tree knows below folder and load its first page again.
function reloadFolder(folder) {
  const s = state;
  const n = s.nodes.get(folder);
  if (!n || !n.group) return;
  for (const k of [...s.nodes.keys()]) if (k !== folder && (folder === '' || k.startsWith(`${folder}/`))) s.nodes.delete(k);
  n.group.remove();
  n.group = null;
  n.loaded = 0;
  n.expanded = false;
  expand(n);
}

// Arrow keys move between the visible items; Right opens, Left closes or goes up.
function keys(e) {
  const items = [...state.tree.querySelectorAll('li[role="treeitem"]')].filter((li) => li.offsetParent !== null);
  const i = items.indexOf(document.activeElement);
  if (i < 0) return;
  const li = items[i];
  const n = [...state.nodes.values()].find((x) => x.li === li);
  const go = (j) => { if (items[j]) { items[j].focus(); e.preventDefault(); } };
  switch (e.key) {
    case 'ArrowDown': go(i + 1); break;
    case 'ArrowUp': go(i - 1); break;
    case 'Home': go(0); break;
    case 'End': go(items.length - 1); break;
    case 'ArrowRight':
      if (n && n.folder && !n.expanded) expand(n);
      else go(i + 1);
      e.preventDefault();
      break;
    case 'ArrowLeft':
      if (n && n.folder && n.expanded && n.path) collapse(n);
      else if (n && n.path !== '') state.nodes.get(parentOf(n.path))?.li.focus();
      e.preventDefault();
      break;
    case 'Enter':
    case ' ':
      if (li.moreOf) more(li.moreOf);
      else if (n) location.hash = browseLink(state.repo, n.path);
      e.preventDefault();
      break;
    default:
  }
}
