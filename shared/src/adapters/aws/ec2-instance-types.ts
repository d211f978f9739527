import { DescribeCapacityReservationsCommand, DescribeInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import type { CallOptions } from '../../reconcile/ports.ts';

/** What a capacity event names: an instance, or the reservation (Capacity Block) it ran in. */
export type CapacitySubject = { instanceId: string } | { reservationId: string };

/**
 * The instance type behind a capacity event: EC2's events name an instance or a reservation,
 * never a type, and the pool is the type's family.
 */
export interface InstanceTypeLookup {
  instanceTypeOf(subject: CapacitySubject, options?: CallOptions): Promise<string | null>;
}

export class Ec2InstanceTypes implements InstanceTypeLookup {
  constructor(private readonly client: EC2Client) {}

  async instanceTypeOf(subject: CapacitySubject, options: CallOptions = {}): Promise<string | null> {
    if ('instanceId' in subject) {
      const out = await this.client.send(new DescribeInstancesCommand({ InstanceIds: [subject.instanceId] }), { abortSignal: options.signal });
      return out.Reservations?.[0]?.Instances?.[0]?.InstanceType ?? null;
    }
    const out = await this.client.send(new DescribeCapacityReservationsCommand({ CapacityReservationIds: [subject.reservationId] }), { abortSignal: options.signal });
    return out.CapacityReservations?.[0]?.InstanceType ?? null;
  }
}
