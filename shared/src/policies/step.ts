import { isShort } from '../core/pools.ts';
import { capacitySplit, costSplit } from './static.ts';
import type { PolicyContext, PolicyProposal } from './types.ts';

/**
 * Option 3: the seed's binary D_cost. Cost split while the cost-optimized capacity is there;
 * after `failoverAfterTicks` bad ticks in a row, the capacity split; back to the cost split only
 * when every short pool has been proven by a probe, and never sooner than `holdSeconds` after the
 * last change.
 */
export function step(ctx: PolicyContext): PolicyProposal {
  const { state, settings, now } = ctx;
  const costShares = costSplit(ctx).shares;
  const costUnits = ctx.units.filter((u) => (costShares[u.name] ?? 0) > 0);
  const short = [...new Set(costUnits.filter((u) => isShort(state.pools, u.family)).map((u) => u.family))];
  const held = now - state.since >= settings.holdSeconds * 1000;
  const reasons: string[] = [];
  let mode = state.mode === 'capacity' ? 'capacity' : 'cost';
  // Counted up to the failover threshold only: beyond it the count changes nothing, and a
  // shortage that lasts must not change the state on every tick.
  let badTicks = short.length > 0 ? Math.min(settings.failoverAfterTicks, state.badTicks + 1) : 0;
  let since = state.since;

  if (mode === 'cost' && short.length > 0) {
    if (badTicks >= settings.failoverAfterTicks && held) {
      mode = 'capacity';
      since = now;
      reasons.push(`failover: pool(s) ${short.join(', ')} short for ${badTicks} tick(s)`);
    } else {
      reasons.push(`pool(s) ${short.join(', ')} short: bad tick ${badTicks} of ${settings.failoverAfterTicks}${held ? '' : ' (holding)'}`);
    }
  } else if (mode === 'capacity') {
    if (short.length === 0 && held) {
      mode = 'cost';
      since = now;
      badTicks = 0;
      reasons.push('fallback: the short pools are proven back');
    } else {
      reasons.push(short.length > 0 ? `staying on the capacity split: ${short.join(', ')} still short` : 'staying on the capacity split: hold time not over');
    }
  }

  const split = mode === 'cost' ? costSplit(ctx) : capacitySplit(ctx);
  return {
    mode: mode as 'cost' | 'capacity',
    ...split,
    reasons: [...reasons, ...split.reasons],
    state: { mode: mode as 'cost' | 'capacity', since, badTicks },
  };
}
