import { describe, expect, it } from 'vitest';
import { MINUTE_MS, requestMinutes } from '../../shared/src/reconcile/request-minutes.ts';

const m = (i: number) => i * MINUTE_MS;
const counts = (entries: Record<string, Array<[number, number]>>) => new Map(Object.entries(entries).map(([u, pts]) => [u, new Map(pts.map(([i, v]) => [m(i), v]))]));

describe('requestMinutes: which minutes of request counts are known', () => {
  it('a minute without a datapoint reads 0 once another unit shows CloudWatch has delivered it', () => {
    // Prepare: minutes 0..3; unit b idle in minutes 2 and 3, unit a busy through minute 3.
    const known = requestMinutes(counts({ a: [[0, 10], [1, 10], [2, 12], [3, 9]], b: [[0, 4], [1, 5]] }), m(0), m(4));
    // Assess
    expect(known.get('b')).toEqual({ rpm: 0, rpmHistory: [[m(0), 4], [m(1), 5], [m(2), 0], [m(3), 0]] });
    expect(known.get('a')!.rpm).toBe(9);
  });

  it('minutes past every unit\'s newest datapoint have not arrived: the last minute is not observed, not zero demand', () => {
    // Prepare: CloudWatch has delivered up to minute 1 only; the read asks up to minute 3.
    const known = requestMinutes(counts({ a: [[0, 10], [1, 11]], b: [[1, 3]] }), m(0), m(4));
    // Assess
    expect(known.get('a')).toEqual({ rpm: null, rpmHistory: [[m(0), 10], [m(1), 11]] });
    expect(known.get('b')).toEqual({ rpm: null, rpmHistory: [[m(0), 0], [m(1), 3]] });
  });

  it('nothing delivered at all: every unit not observed, with no history', () => {
    expect(requestMinutes(counts({ a: [], b: [] }), m(0), m(3)).get('a')).toEqual({ rpm: null, rpmHistory: [] });
  });

  it('a datapoint at or past the window\'s end does not make the window\'s minutes arrived beyond it', () => {
    const known = requestMinutes(counts({ a: [[5, 7]], b: [[0, 2]] }), m(0), m(3));
    expect(known.get('b')).toEqual({ rpm: null, rpmHistory: [[m(0), 2]] });
  });

  it('a unit whose read failed is left out and stays unobserved; the others are unaffected', () => {
    const known = requestMinutes(counts({ a: [[0, 1], [1, 2]] }), m(0), m(2));
    expect([...known.keys()]).toEqual(['a']);
    expect(known.get('a')!.rpm).toBe(2);
  });
});
