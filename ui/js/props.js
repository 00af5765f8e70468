// props.js - properties of a file or folder: the list, add, edit, delete
// (PUT/DELETE /api/storage/{repo}/{path}?properties=..., docs/api.md).
import { call, enc } from './api.js';
import { h, mount, field, note, table, button } from './dom.js';

// A value as the properties syntax needs it: \ , | ; = escaped by a backslash.
export function escapeValue(v) {
  return String(v).replace(/[\\,|;=]/g, (c) => `\\${c}`);
}

function url(repo, path) {
  return `/api/storage/${enc(repo)}${path ? `/${enc(path)}` : ''}`;
}

// The properties editor of repo/path into el. folder: offer "everything below".
export async function propsEditor(el, repo, path, folder, toast) {
  const msgs = h('div', { class: 'msgs' });
  const list = h('div');
  async function load() {
    let props = {};
    try {
      props = (await call('GET', `${url(repo, path)}?properties`)).properties || {};
    } catch (e) {
      if (e.status !== 404) throw e; /* 404: no properties */
    }
    const keys = Object.keys(props).sort();
    mount(list, keys.length ? table([
      { label: 'Key', cell: (k) => h('code', { text: k }) },
      { label: 'Values', cell: (k) => h('ul', { class: 'values' }, props[k].map((v) => h('li', {}, h('code', { text: v })))) },
      {
        label: 'Actions',
        cell: (k) => h('span', { class: 'row-actions' },
          button('Edit', () => {
            form.elements.key.value = k;
            form.elements.values.value = props[k].join('\n');
            form.elements.values.focus();
          }, { 'aria-label': `Edit property ${k}` }),
          button('Delete', async () => {
            try {
              await call('DELETE', `${url(repo, path)}?properties=${encodeURIComponent(k)}&recursive=${recursive() ? 1 : 0}`);
              toast(`Deleted property ${k}.`);
              await load();
            } catch (e) {
              mount(msgs, note('error', e.message));
            }
          }, { class: 'danger', 'aria-label': `Delete property ${k}` })),
      },
    ], keys, { 'aria-label': 'Properties' }) : h('p', { class: 'muted', text: 'No properties.' }));
  }
  const form = h('form', { class: 'inline-form', 'aria-label': 'Set a property' },
    field('Key', { name: 'key', required: true, maxlength: 255 }),
    field('Values', { name: 'values', type: 'textarea', rows: 2, hint: 'One value per line' }),
    folder ? field('Also on everything below', { name: 'recursive', type: 'checkbox' }) : null,
    h('div', { class: 'actions' }, h('button', { type: 'submit', text: 'Set property' })));
  const recursive = () => folder && form.elements.recursive.checked;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const k = form.elements.key.value.trim();
    const vals = form.elements.values.value.split('\n').map((v) => v.trim()).filter((v) => v !== '');
    const spec = `${k}=${vals.map(escapeValue).join(',')}`;
    try {
      await call('PUT', `${url(repo, path)}?properties=${encodeURIComponent(spec)}&recursive=${recursive() ? 1 : 0}`);
      toast(`Set property ${k}.`);
      form.reset();
      mount(msgs);
      await load();
    } catch (err) {
      mount(msgs, note('error', err.message));
    }
  });
  mount(el, h('h3', { text: 'Properties' }), list, form, msgs);
  await load().catch((e) => mount(msgs, note('error', e.message)));
}
