import { DescribeCapacityReservationsCommand, type CapacityReservation, type EC2Client } from '@aws-sdk/client-ec2';
import type { PoolSignal } from '../../core/types.ts';
import type { CallOptions, CapacitySignalsPort } from '../../reconcile/ports.ts';

/**
 * The EC2 half of the capacity signals: an active On-Demand Capacity Reservation or Capacity
 * Block with instances free for a family is a pool that can take pods now. Karpenter's ICE
 * signals come from Kubernetes; Spot interruptions arrive as EventBridge events.
 */
export class Ec2CapacitySignals implements CapacitySignalsPort {
  constructor(private readonly client: EC2Client) {}

  async readSignals(families: ReadonlyArray<string>, since: number, options: CallOptions = {}): Promise<PoolSignal[]> {
    if (families.length === 0) return [];
    const wanted = new Set(families);
    const reservations: CapacityReservation[] = [];
    let nextToken: string | undefined;
    do {
      const out = await this.client.send(
        new DescribeCapacityReservationsCommand({ Filters: [{ Name: 'state', Values: ['active'] }], NextToken: nextToken }),
        { abortSignal: options.signal },
      );
      reservations.push(...(out.CapacityReservations ?? []));
      nextToken = out.NextToken;
    } while (nextToken);

    const free = new Map<string, CapacityReservation[]>();
    for (const r of reservations) {
      const family = r.InstanceType?.split('.')[0];
      // The filter is a request, not a guarantee: check the state here too.
      if (!family || !wanted.has(family) || r.State !== 'active' || (r.AvailableInstanceCount ?? 0) <= 0) continue;
      free.set(family, [...(free.get(family) ?? []), r]);
    }
    // A reservation is a standing fact, not an event: it is stamped with the start of the window.
    return [...free].map(([family, rs]) => ({
      family,
      kind: 'reservation-available' as const,
      at: since,
      detail: rs.map((r) => `${r.CapacityReservationId}: ${r.AvailableInstanceCount}/${r.TotalInstanceCount} ${r.InstanceType} free in ${r.AvailabilityZone}`).join('; '),
    }));
  }
}
