// Text for values from the server: times in local time, sizes, durations. Pure functions,
// no DOM, so every view formats the same value the same way.

export const dash = '—';
export const orDash = (v) => (v === null || v === undefined || v === '' ? dash : String(v));
export const enc = encodeURIComponent;
const pad = (n, w = 2) => String(n).padStart(w, '0');

export function parseTime(value) {
  if (!value) return null;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** HH:MM:SS.mmm, local time. */
export function fmtClock(value) {
  const d = parseTime(value);
  if (!d) return dash;
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** YYYY-MM-DD HH:MM:SS.mmm, local time. */
export function fmtDateTime(value) {
  const d = parseTime(value);
  if (!d) return dash;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtClock(value)}`;
}

export function fmtMs(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '';
  if (ms >= 10000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 100) return `${Math.round(ms)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** What Sinch charged (`{currencyId, amount}`) as "0.0176 EUR"; another shape as its JSON. */
export function fmtMoney(money) {
  if (typeof money?.amount !== 'number') return JSON.stringify(money);
  return `${money.amount} ${money.currencyId ?? ''}`.trim();
}

export function fmtBytes(n) {
  if (typeof n !== 'number') return dash;
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function fmtSkew(secs) {
  if (typeof secs !== 'number') return dash;
  const sign = secs > 0 ? '+' : secs < 0 ? '−' : '';
  const abs = Math.abs(secs);
  if (abs < 120) return `${sign}${abs} s`;
  if (abs < 7200) return `${sign}${Math.round(abs / 60)} min`;
  if (abs < 172800) return `${sign}${(abs / 3600).toFixed(1)} h`;
  return `${sign}${(abs / 86400).toFixed(1)} d`;
}

/** Pretty-printed JSON when the text is JSON, else the text as it is. */
export function prettyJson(text) {
  if (typeof text !== 'string') return JSON.stringify(text, null, 2);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

export function ordinal(n) {
  const s = ['th', 'st', 'nd', 'rd'];
  const v = n % 100;
  return n + (s[(v - 20) % 10] || s[v] || s[0]);
}
