// dom.js - building the page. Every string goes in as a text node or an
// attribute value, never as markup: names, paths, properties and
// descriptions are whatever someone stored, and must stay text.

const SAFE_URL = /^(?:\/|#|\.\/|https?:\/\/)/i;

// h('tag', {attrs}, ...children): an element. Attributes: class, text
// (textContent), on<event> (a function), data-*, aria-*, role, and the
// usual ones; href and src must be relative or http(s). Children are
// nodes, strings (as text), arrays, or null/false (skipped).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') el.textContent = String(v);
    else if (k === 'class') el.className = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'href' || k === 'src' || k === 'action') {
      if (!SAFE_URL.test(String(v))) throw new Error(`refused URL ${v}`);
      el.setAttribute(k, v);
    } else if (k === 'value') el.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'selected' || k === 'required' || k === 'multiple' || k === 'hidden') el[k] = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) add(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// Replace el's content with children.
export function mount(el, ...children) {
  el.replaceChildren();
  add(el, children);
  return el;
}

let uid = 0;
// A labelled form field: {label, id?, type, name, value, ...attrs, options (select), hint}.
export function field(label, attrs = {}) {
  const id = attrs.id || `f${++uid}`;
  const { options, hint, ...rest } = attrs;
  let input;
  if (rest.type === 'select') {
    delete rest.type;
    input = h('select', { id, ...rest },
      (options || []).map((o) => (typeof o === 'string' ? h('option', { value: o, text: o })
        : h('option', { value: o.value, text: o.label, selected: o.selected }))));
  } else if (rest.type === 'textarea') {
    delete rest.type;
    input = h('textarea', { id, ...rest });
  } else {
    input = h('input', { id, type: 'text', ...rest });
  }
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) input.setAttribute('aria-describedby', hintId);
  if (rest.type === 'checkbox') {
    return h('div', { class: 'field check' }, input, h('label', { for: id, text: label }),
      hint && h('small', { id: hintId, text: hint }));
  }
  return h('div', { class: 'field' }, h('label', { for: id, text: label }), input,
    hint && h('small', { id: hintId, text: hint }));
}

// The value of the form control named name inside form.
export function val(form, name) {
  const el = form.elements.namedItem(name);
  if (!el) return '';
  if (el.type === 'checkbox') return el.checked;
  return el.value.trim();
}

export function button(text, onclick, attrs = {}) {
  return h('button', { type: 'button', onclick, ...attrs, text });
}

// A table: cols [{label, cell(row) -> node|string, class}], rows.
export function table(cols, rows, attrs = {}) {
  return h('div', { class: 'table-wrap' },
    h('table', attrs,
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col', class: c.class, text: c.label })))),
      h('tbody', {}, rows.map((r) => h('tr', {}, cols.map((c) => h('td', { class: c.class }, c.cell(r))))))));
}

// A message box: kind 'error' | 'ok' | 'info'.
export function note(kind, text) {
  return h('p', { class: `note ${kind}`, role: kind === 'error' ? 'alert' : 'status', text });
}

export function copyButton(text, label = 'Copy') {
  return button(label, async (e) => {
    const b = e.currentTarget;
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = 'Copied';
    } catch {
      b.textContent = 'Select and copy';
    }
    setTimeout(() => { b.textContent = label; }, 1500);
  }, { class: 'small' });
}
