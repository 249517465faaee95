// sinch-webhooks inspector: vanilla JS, no build step, no dependencies. The entry module:
// it wires the views to the session, the router and the activity stream, so that no view
// imports another view's controller just to tell it something happened.
//
// Everything the server sends is shown with textContent (bodies are attacker-influenced);
// nothing builds HTML from strings. Every call goes to the documented API with the bearer
// token the user typed, kept in sessionStorage for this tab only.

import { currentToken, forgetToken, onUnauthorized } from './js/api.js';
import { $ } from './js/dom.js';
import { openHash } from './js/router.js';
import { ActivityStream } from './js/stream.js';
import { initTheme } from './js/theme.js';
import { actions } from './js/views/actions.js';
import { calls, numbers, verifications } from './js/views/aggregates.js';
import { feed } from './js/views/feed.js';
import { initLogin, showLogin } from './js/views/login.js';
import { lookup } from './js/views/lookup.js';
import { messages } from './js/views/message.js';
import { rejections } from './js/views/rejected.js';

/** The first segment of the hash: the view it shows, its title, what it opens there. */
const ROUTES = new Map([
  ['rejected', { view: 'rejected', title: 'Rejected attempts', open: () => rejections.load() }],
  ['message', { view: 'message', title: 'Messages', open: (id) => messages.open(id) }],
  ['callback', { view: 'message', title: 'Callback', open: (id) => messages.openCallback(id) }],
  ['lookup', { view: 'lookup', title: 'Lookup' }],
  ['batch', { view: 'lookup', title: 'SMS batch', open: (id) => id && lookup.openBatch(id) }],
  ['calls', { view: 'calls', title: 'Calls', open: (id) => calls.open(id) }],
  ['verifications', { view: 'verifications', title: 'Verifications', open: (id) => verifications.open(id) }],
  ['numbers', { view: 'numbers', title: 'Numbers', open: (id) => numbers.open(id) }],
  ['actions', { view: 'actions', title: 'Send & replay', open: () => actions.load() }],
]);
const FEED = { view: 'feed', title: 'Live feed' };

function route() {
  if (currentToken()) openHash(ROUTES, FEED);
  else showLogin();
}

/** The connection to the activity stream, shown in the top bar. */
function setConn(state, text, title) {
  const conn = $('conn');
  conn.dataset.state = state;
  $('conn-text').textContent = text;
  if (title) conn.title = title;
  else conn.removeAttribute('title');
}

const activity = new ActivityStream({
  onItem: (item) => feed.receive(item),
  onState: setConn,
  onUnauthorized: signOut,
});

function startSession() {
  $('tabs').hidden = false;
  $('logout').hidden = false;
  $('conn').hidden = false;
  route();
  activity.start();
  rejections.load();
}

function signOut(reason) {
  const wasSignedIn = currentToken() !== null;
  forgetToken();
  activity.stop();
  feed.reset();
  rejections.reset();
  actions.reset();
  if (wasSignedIn || reason) showLogin(reason);
}

function init() {
  initTheme();
  onUnauthorized(signOut);
  initLogin(startSession);
  $('logout').addEventListener('click', () => {
    signOut('');
    location.hash = '';
  });
  feed.init({
    onRejected: () => rejections.refreshSoon(),
    onMessages: (ids) => messages.touched(ids),
  });
  rejections.init();
  messages.init({ onContact: (id) => lookup.prefillContact(id) });
  lookup.init();
  for (const view of [calls, verifications, numbers]) view.init();
  actions.init();
  window.addEventListener('hashchange', route);
  // A tab coming back to the foreground reconnects at once instead of waiting out a backoff.
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && currentToken()) activity.reconnectNow();
  });
  if (currentToken()) startSession();
  else showLogin();
}

init();
