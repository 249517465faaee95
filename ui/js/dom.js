// DOM helpers: elements from data, never from HTML strings. What the server sends is
// attacker-influenced (callback bodies), so text only ever goes in as text.

import { dash, fmtClock, fmtDateTime, orDash } from './format.js';

export const $ = (id) => document.getElementById(id);

export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = String(value);
      else if (key === 'dataset') Object.assign(node.dataset, value);
      else if (key.startsWith('on') && typeof value === 'function') {
        node.addEventListener(key.slice(2), value);
      } else node.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

/** A time element: local time shown, the server's UTC value in the title. */
export function timeEl(value, short) {
  if (!value) return el('span', { class: 'muted', text: dash });
  return el('time', { datetime: value, title: `${value} (UTC)`, text: short ? fmtClock(value) : fmtDateTime(value) });
}

export function badge(kind, text, title) {
  return el('span', { class: `badge b-${kind}`, title, text: text ?? kind });
}

export function statusEl(status) {
  if (!status) return el('span', { class: 'muted', text: dash });
  return el('span', { class: `st st-${String(status).replace(/[^A-Za-z_]/g, '')}`, text: status });
}

export function kv(pairs) {
  const dl = el('dl', { class: 'kv' });
  for (const [key, value] of pairs) {
    if (value === undefined) continue;
    dl.append(el('dt', { text: key }), el('dd', null, value instanceof Node ? value : orDash(value)));
  }
  return dl;
}

export function mono(text) {
  return el('span', { class: 'mono', text: orDash(text) });
}

export function addOption(select, known, value) {
  if (!value || known.has(value)) return;
  known.add(value);
  // Options are kept sorted; adding one never changes the select's size.
  const option = el('option', { value, text: value });
  const after = [...select.options].slice(1).find((o) => o.value.localeCompare(value) > 0);
  select.insertBefore(option, after || null);
}

/** Up/Down/Home/End move between the focusable rows of a list. */
export function listKeys(event, container, selector) {
  if (!['ArrowDown', 'ArrowUp', 'Home', 'End'].includes(event.key)) return;
  const rows = [...container.querySelectorAll(selector)].filter((row) => row.offsetParent !== null);
  if (!rows.length) return;
  const index = rows.indexOf(document.activeElement);
  let next = index;
  if (event.key === 'ArrowDown') next = Math.min(rows.length - 1, index + 1);
  else if (event.key === 'ArrowUp') next = Math.max(0, index - 1);
  else if (event.key === 'Home') next = 0;
  else next = rows.length - 1;
  event.preventDefault();
  rows[next].focus();
  rows[next].scrollIntoView({ block: 'nearest' });
}

/** A table of `rows` (cells: nodes or text), named `name` for tests and styles. */
export function table(headers, rows, name) {
  return el(
    'div',
    { class: 'table-scroll section-gap' },
    el(
      'table',
      { class: 'grid', dataset: name ? { name } : null },
      el('thead', null, el('tr', null, headers.map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', null, rows.map((cells) => el('tr', null, cells.map((cell) => el('td', null, cell instanceof Node ? cell : orDash(cell)))))),
    ),
  );
}
