// trash.js - what was deleted and may be restored (/api/trash/list, restore);
// admins may empty it. Each caller sees what it could read where it was.
import { session, get, call, enc } from '../api.js';
import { h, mount, note, table, button } from '../dom.js';
import { bytes, date, browseLink } from '../util.js';

const PAGE = 200;

export async function render(main, r, { toast }) {
  const msgs = h('div', { class: 'msgs' });
  const body = h('div');
  main.append(h('h1', { text: 'Trash' }), msgs, body);
  let offset = 0;
  async function load() {
    const res = await get(`/api/trash/list?offset=${offset}&limit=${PAGE}`);
    const items = res.items || [];
    mount(body,
      session.admin ? h('p', {}, button('Empty the trash…', empty, { class: 'danger' })) : null,
      items.length ? table([
        { label: 'Repository', cell: (x) => x.repo },
        { label: 'Path', cell: (x) => h('span', { class: 'mono', text: x.path }) },
        { label: 'Size', class: 'num', cell: (x) => bytes(x.size) },
        { label: 'Deleted', cell: (x) => `${date(x.deleted)} by ${x.deletedBy || '?'}` },
        {
          label: 'Actions',
          cell: (x) => button('Restore', async () => {
            try {
              await call('POST', `/api/trash/restore/${enc(x.repo)}/${enc(x.path)}`);
              toast(`Restored ${x.repo}/${x.path}.`);
              mount(msgs, h('p', { class: 'note ok', role: 'status' }, 'Restored ',
                h('a', { href: browseLink(x.repo, x.path), text: `${x.repo}/${x.path}` }), '.'));
              await load();
            } catch (e) {
              mount(msgs, note('error', e.message));
            }
          }, { 'aria-label': `Restore ${x.repo}/${x.path}` }),
        },
      ], items, { 'aria-label': 'Trashed items' }) : note('info', 'The trash is empty.'),
      h('div', { class: 'pager' },
        offset > 0 ? button('Previous', () => { offset = Math.max(0, offset - PAGE); load().catch(err); }) : null,
        res.more ? button('Next', () => { offset += PAGE; load().catch(err); }) : null));
  }
  async function empty() {
    if (!window.confirm('Purge everything in the trash? This cannot be undone.')) return;
    try {
      await call('POST', '/api/trash/empty');
      toast('The trash is empty.');
      await load();
    } catch (e) {
      err(e);
    }
  }
  function err(e) {
    mount(msgs, note('error', e.message));
  }
  await load().catch(err);
}
