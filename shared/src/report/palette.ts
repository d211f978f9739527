import type { Mode } from '../core/types.ts';

/** The report's colours: one per unit, per policy and per mode, and the marks for trouble. */

export const UNIT_COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#76b7b2', '#b07aa1', '#edc948', '#9c755f', '#ff9da7', '#bab0ac', '#86bcb6'];
const POLICY_COLORS = ['#2f4b7c', '#d45087', '#ff7c43', '#665191', '#2a9d8f', '#a05195', '#f95d6a', '#003f5c'];
export const MODE_COLORS: Record<Mode, string> = { cost: '#8cc8a0', capacity: '#f3c969', override: '#b4a7d6' };
export const FAILED = '#d62728';
export const STARTING = '#c9ced6';
export const PENDING = '#d9534f';

/** The colour of the i-th unit of a service. */
export function unitColor(i: number): string {
  return UNIT_COLORS[i % UNIT_COLORS.length] ?? '#888';
}

/** The colour of the i-th policy run, the same in the table, the headings and the cost charts. */
export function policyColor(i: number): string {
  return POLICY_COLORS[i % POLICY_COLORS.length] ?? '#555';
}
