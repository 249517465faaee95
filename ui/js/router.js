// Views and routing: one view shown at a time, chosen by the URL's hash (#feed, #rejected,
// #message/<id>, #callback/<id>, #lookup, #batch/<id>, #calls[/<id>], #verifications[/<id>],
// #numbers[/<id>], #actions). The route table is the
// entry module's; views register here only what they must do when shown or left.

import { $ } from './dom.js';

const VIEWS = ['login', 'feed', 'rejected', 'message', 'lookup', 'calls', 'verifications', 'numbers', 'actions'];
const hooks = new Map();
let current = null;

export const currentView = () => current;

/** `leave` runs while the view is still shown (its scroll position is still there). */
export function onView(name, { enter, leave }) {
  hooks.set(name, { enter, leave });
}

export function showView(name) {
  const entering = current !== name;
  if (entering) hooks.get(current)?.leave?.();
  for (const view of VIEWS) $(`view-${view}`).hidden = view !== name;
  for (const tab of document.querySelectorAll('.tab')) {
    if (tab.dataset.view === name) {
      tab.setAttribute('aria-current', 'page');
      // On a phone the tabs scroll sideways: the current one must not be out of sight.
      tab.scrollIntoView({ block: 'nearest', inline: 'nearest' });
    } else tab.removeAttribute('aria-current');
  }
  current = name;
  if (entering) hooks.get(name)?.enter?.();
}

/**
 * Shows what the hash names. `routes` maps its first segment to `{ view, title, open }`;
 * `open` gets the rest, decoded. Anything else is `fallback`.
 */
export function openHash(routes, fallback) {
  const [head, ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  const arg = rest.length ? rest.map(safeDecode).join('/') : '';
  // A Map, not an object: a hash such as #constructor must not find Object's properties.
  const target = routes.get(head) || fallback;
  showView(target.view);
  target.open?.(arg);
  document.title = `${target.title} · sinch-webhooks inspector`;
}

function safeDecode(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
