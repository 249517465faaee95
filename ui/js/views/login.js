// Login: the token form. Signed out, the page shows nothing else: no tab, no stream.

import { ApiError, api, keepToken, useToken } from '../api.js';
import { $ } from '../dom.js';
import { showView } from '../router.js';

export function showLogin(reason) {
  $('tabs').hidden = true;
  $('logout').hidden = true;
  $('conn').hidden = true;
  showView('login');
  document.title = 'Open · sinch-webhooks inspector';
  $('login-error').textContent = reason || '';
  const input = $('token');
  input.value = '';
  input.focus();
}

async function onLogin(event, onSignedIn) {
  event.preventDefault();
  const value = $('token').value.trim();
  const error = $('login-error');
  error.textContent = '';
  if (!value) {
    error.textContent = 'Enter the API token.';
    return;
  }
  // A header value must be Latin-1; anything else cannot be the token.
  if (/[^\x20-\x7e]/.test(value)) {
    error.textContent = 'The token has characters an HTTP header cannot carry; check what you pasted.';
    return;
  }
  const button = $('login-submit');
  button.disabled = true;
  useToken(value);
  try {
    // Any authenticated read checks the token; this one is cheap.
    await api('/api/messages?limit=1');
    keepToken(value);
    onSignedIn();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) {
      useToken(null);
      error.textContent = e instanceof ApiError ? e.message : String(e);
    }
    // A 401 has already put the server's reason on the form.
  } finally {
    button.disabled = false;
  }
}

/** `onSignedIn` runs once the server has accepted the token, which is then kept. */
export function initLogin(onSignedIn) {
  $('login-form').addEventListener('submit', (event) => onLogin(event, onSignedIn));
}
