/**
 * Number formatting shared by the terminal table, the CSV/JSON timeline and the HTML report,
 * and the report's HTML escaping. Plain functions with a fixed locale-free output, so reports
 * are byte-for-byte reproducible.
 */

/** Groups the integer part with commas: 1234567.5 → "1,234,567.5". */
function group(intDigits: string): string {
  return intDigits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** A fixed number of decimals with thousands separators; "—" for a non-finite value. */
export function formatNumber(value: number, decimals = 0): string {
  if (!Number.isFinite(value)) return '—';
  const fixed = Math.abs(value).toFixed(decimals);
  const [intPart = '0', frac] = fixed.split('.');
  const sign = value < 0 && Number(fixed) !== 0 ? '-' : '';
  return sign + group(intPart) + (frac !== undefined ? `.${frac}` : '');
}

/** Dollars with two decimals: 1234.5 → "$1,234.50". */
export function formatDollars(value: number): string {
  if (!Number.isFinite(value)) return '—';
  const s = formatNumber(value, 2);
  return s.startsWith('-') ? `-$${s.slice(1)}` : `$${s}`;
}

/**
 * Minutes from the first shortage until traffic moved off the short pool. `null` reads "never"
 * when there was a shortage to react to, and "—" when there was none.
 */
export function formatMinutesToShift(value: number | null, hadShortage: boolean): string {
  if (value === null || !Number.isFinite(value)) return hadShortage ? 'never' : '—';
  return formatNumber(value, Number.isInteger(value) ? 0 : 1);
}

/**
 * A machine-readable number for CSV/JSON: at most `decimals` decimals, no float noise
 * (0.1 + 0.2 → "0.3"), no exponent for ordinary magnitudes; "" for a non-finite value.
 */
export function plainNumber(value: number, decimals = 6): string {
  if (!Number.isFinite(value)) return '';
  const rounded = Number(value.toFixed(decimals));
  return Object.is(rounded, -0) ? '0' : String(rounded);
}

/** Text made safe for HTML element content and quoted attribute values. */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}
