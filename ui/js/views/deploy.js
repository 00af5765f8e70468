// deploy.js - drop or choose files, PUT each into <repo>/<folder>/<name>
// with a progress bar per file, then show the checksums granary computed.
import { get, upload, enc } from '../api.js';
import { h, mount, field, note, val, copyButton } from '../dom.js';
import { bytes, browseLink } from '../util.js';

const PARALLEL = 2;

export async function render(main, r) {
  let repos = [];
  const msgs = h('div', { class: 'msgs' });
  try {
    repos = await get('/api/repositories');
  } catch (e) {
    mount(msgs, note('error', e.message));
  }
  const want = r.query.get('repo');
  const list = h('ol', { class: 'uploads', 'aria-label': 'Uploads' });
  const input = h('input', { type: 'file', multiple: true, id: 'deploy-files', class: 'visually-hidden' });
  const form = h('form', { class: 'card', 'aria-label': 'Deploy' },
    field('Repository', { name: 'repo', type: 'select', required: true, options: repos.map((x) => ({ value: x.key, label: `${x.key} (${x.packageType})`, selected: x.key === want })) }),
    field('Folder', { name: 'path', value: r.query.get('path') || '', hint: 'Path inside the repository, e.g. org/acme/tool/1.0 (empty: the root)' }));
  const drop = h('div', { class: 'drop', id: 'drop' },
    h('p', {}, 'Drop files here, or '),
    h('label', { for: 'deploy-files', class: 'button primary', tabindex: '0', role: 'button', text: 'Choose files' }),
    input);
  drop.querySelector('label').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      input.click();
    }
  });
  main.append(h('h1', { text: 'Deploy' }), msgs, form, drop, list);

  const queue = [];
  let running = 0;
  function start(files) {
    const repo = val(form, 'repo');
    if (!repo) {
      mount(msgs, note('error', 'Choose a repository first.'));
      return;
    }
    const folder = val(form, 'path').replace(/^\/+|\/+$/g, '');
    for (const f of files) {
      const path = folder ? `${folder}/${f.name}` : f.name;
      const bar = h('progress', { max: '100', value: '0', 'aria-label': `Upload of ${f.name}` });
      const pct = h('span', { class: 'pct', text: '0 %' });
      const status = h('div', { class: 'result' });
      const li = h('li', { class: 'upload' },
        h('div', { class: 'upload-head' }, h('span', { class: 'mono', text: `${repo}/${path}` }), h('span', { class: 'muted', text: bytes(f.size) })),
        h('div', { class: 'bar' }, bar, pct), status);
      list.append(li);
      queue.push({ f, repo, path, bar, pct, status, li });
    }
    pump();
  }
  function pump() {
    while (running < PARALLEL && queue.length) {
      const job = queue.shift();
      running++;
      run(job).finally(() => {
        running--;
        pump();
      });
    }
  }
  async function run(job) {
    const { f, repo, path, bar, pct, status, li } = job;
    try {
      const res = await upload(`/${enc(repo)}/${enc(path)}`, f, (done, total) => {
        const p = total ? Math.floor((done * 100) / total) : 100;
        bar.value = p;
        pct.textContent = `${p} %`;
      });
      bar.value = 100;
      pct.textContent = '100 %';
      li.classList.add('done');
      const c = res.checksums || {};
      mount(status, h('dl', { class: 'facts' },
        [['SHA-256', c.sha256], ['SHA-1', c.sha1], ['MD5', c.md5]].map(([k, v]) => [h('dt', { text: k }),
          h('dd', {}, h('code', { 'data-hash': k.toLowerCase().replace('-', ''), text: v || '' }), v ? copyButton(v) : null)])),
      h('a', { href: browseLink(repo, path), text: 'Browse to it' }));
    } catch (e) {
      li.classList.add('failed');
      mount(status, note('error', `${f.name}: ${e.message}`));
    }
  }
  input.addEventListener('change', () => {
    start([...input.files]);
    input.value = '';
  });
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    start([...e.dataTransfer.files]);
  });
}
