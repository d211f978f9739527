/**
 * Which minutes of request counts are known, the same for the CloudWatch adapter and the
 * simulator's ports: a minute with no datapoint is 0 requests only once CloudWatch has delivered
 * that minute, i.e. some unit of the fleet has a datapoint at or after it. A minute past the
 * newest datapoint of every unit has not arrived yet (CloudWatch ran later than the read's lag):
 * it is not observed, never a drop to zero demand.
 */

export const MINUTE_MS = 60_000;

export interface RequestMinutes {
  /** Requests in the last minute of the window; null when that minute has not arrived. */
  rpm: number | null;
  /** [minute start, requests] for every arrived minute of the window, oldest first. */
  rpmHistory: Array<[number, number]>;
}

/**
 * `datapoints`: per unit, minute start (epoch ms) → requests, for the units whose counts were
 * read (a unit whose read failed is left out: it stays unobserved). The window is the minutes
 * from `start` up to, not including, `end`.
 */
export function requestMinutes(datapoints: ReadonlyMap<string, ReadonlyMap<number, number>>, start: number, end: number): Map<string, RequestMinutes> {
  let newest = -Infinity;
  for (const values of datapoints.values()) for (const minute of values.keys()) if (minute < end) newest = Math.max(newest, minute);
  const out = new Map<string, RequestMinutes>();
  for (const [unit, values] of datapoints) {
    const rpmHistory: Array<[number, number]> = [];
    for (let minute = start; minute < end && minute <= newest; minute += MINUTE_MS) rpmHistory.push([minute, values.get(minute) ?? 0]);
    const last = rpmHistory.at(-1);
    out.set(unit, { rpm: last && last[0] === end - MINUTE_MS ? last[1] : null, rpmHistory });
  }
  return out;
}
