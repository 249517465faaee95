// Theme: the system's choice unless the toggle says otherwise. Only a choice that differs
// from the system is stored, so a user who picks the system's theme follows it again.

import { $, el } from './dom.js';

const THEME_KEY = 'sinch-webhooks.theme';
const darkQuery = window.matchMedia('(prefers-color-scheme: dark)');
const systemTheme = () => (darkQuery.matches ? 'dark' : 'light');

function storedTheme() {
  try {
    const value = localStorage.getItem(THEME_KEY);
    return value === 'light' || value === 'dark' ? value : 'auto';
  } catch {
    return 'auto';
  }
}

function effectiveTheme() {
  const mode = storedTheme();
  return mode === 'auto' ? systemTheme() : mode;
}

function applyTheme() {
  const mode = storedTheme();
  if (mode === 'auto') document.documentElement.removeAttribute('data-theme');
  else document.documentElement.setAttribute('data-theme', mode);
  const current = effectiveTheme();
  const other = current === 'dark' ? 'light' : 'dark';
  const button = $('theme-toggle');
  button.replaceChildren(
    el('span', { class: 'theme-name', text: current === 'dark' ? 'Dark' : 'Light' }),
    mode === 'auto' ? el('span', { class: 'theme-auto', text: ' · auto' }) : null,
  );
  button.setAttribute('aria-label', `Theme: ${current}${mode === 'auto' ? ', following the system' : ''}. Switch to ${other}`);
  button.dataset.theme = current;
}

function toggleTheme() {
  const next = effectiveTheme() === 'dark' ? 'light' : 'dark';
  try {
    if (next === systemTheme()) localStorage.removeItem(THEME_KEY);
    else localStorage.setItem(THEME_KEY, next);
  } catch {
    /* storage refused: the change lasts until reload */
    document.documentElement.setAttribute('data-theme', next);
  }
  applyTheme();
}

export function initTheme() {
  applyTheme();
  darkQuery.addEventListener('change', applyTheme);
  $('theme-toggle').addEventListener('click', toggleTheme);
}
