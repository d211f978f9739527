import { z } from 'zod';
import type { PoolSignal } from '../core/types.ts';
import type { FleetSpec } from '../spec/schema.ts';
import type { CapacitySubject } from '../adapters/aws/ec2-instance-types.ts';
import { InputValidationError, validate } from '../spec/validation.ts';

/**
 * What wakes the controller: the EventBridge Scheduler's input every minute, and the EC2
 * capacity events its EventBridge rules forward. Each is validated before anything runs; a
 * capacity event asks for a tick at once and, where it concerns a pool, carries a PoolSignal.
 *
 * The EC2 events' shapes are AWS's (EventBridge events reference for Amazon EC2; the Capacity
 * Blocks and interruptible Capacity Reservation monitoring pages). Their `detail` objects keep
 * fields hwai does not read, since AWS adds fields over time.
 */

/** The EventBridge Scheduler target's input (the CDK stack writes it). */
export const ScheduledTickSchema = z
  .object({
    kind: z.literal('scheduled-tick'),
    /** A shard of a large fleet: only these services. All when absent. */
    services: z.array(z.string().min(1)).min(1).max(500).optional(),
  })
  .strict();

const instanceId = z.string().regex(/^i-[0-9a-f]{8,17}$/, 'expected an EC2 instance id (i-…)');
const reservationId = z.string().regex(/^cr-[0-9a-f]{8,17}$/, 'expected a Capacity Reservation id (cr-…)');
const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'expected an ISO 8601 time');

/** The EventBridge envelope every AWS service event shares. */
function ec2Event<D extends string, T extends z.ZodRawShape>(detailType: D, detail: T) {
  return z.object({
    version: z.string(),
    id: z.string().min(1),
    'detail-type': z.literal(detailType),
    source: z.literal('aws.ec2'),
    account: z.string().regex(/^\d{12}$/, 'expected a 12-digit account id'),
    time: isoTime,
    region: z.string().min(1),
    resources: z.array(z.string()),
    detail: z.object(detail).passthrough(),
  });
}

export const SpotInterruptionSchema = ec2Event('EC2 Spot Instance Interruption Warning', {
  'instance-id': instanceId,
  'instance-action': z.enum(['terminate', 'stop', 'hibernate']),
});
export const RebalanceRecommendationSchema = ec2Event('EC2 Instance Rebalance Recommendation', { 'instance-id': instanceId });
export const InstanceStateChangeSchema = ec2Event('EC2 Instance State-change Notification', {
  'instance-id': instanceId,
  state: z.enum(['pending', 'running', 'stopping', 'stopped', 'shutting-down', 'terminated']),
});
export const CapacityBlockExpirySchema = ec2Event('Capacity Block Expiration Warning', {
  'capacity-reservation-id': reservationId,
  'end-date': isoTime,
});
export const ReservationInterruptionSchema = ec2Event('EC2 Capacity Reservation Instance Interruption Warning', {
  'instance-id': instanceId,
  'instance-action': z.string().min(1),
  'instance-termination-time': isoTime.optional(),
});

export const CapacityEventSchema = z.discriminatedUnion('detail-type', [
  SpotInterruptionSchema,
  RebalanceRecommendationSchema,
  InstanceStateChangeSchema,
  CapacityBlockExpirySchema,
  ReservationInterruptionSchema,
]);

export const CAPACITY_DETAIL_TYPES = CapacityEventSchema.options.map((o) => o.shape['detail-type'].value);

export type CapacityEvent = z.infer<typeof CapacityEventSchema>;

/** What a capacity event says about a pool, before its instance type is known. */
export interface CapacityNotice {
  /** The EventBridge event id: the correlation id of the tick it triggers. */
  id: string;
  detailType: CapacityEvent['detail-type'];
  at: number;
  /** The instance, or the reservation, whose instance type names the pool. */
  subject: CapacitySubject;
  /** The signal the pool gets; null when the event only asks for a fresh look (a state change). */
  signal: PoolSignal['kind'] | null;
  detail: string;
}

export type ControllerEvent = { kind: 'scheduled-tick'; services: string[] | null } | { kind: 'capacity-event'; notice: CapacityNotice };

/**
 * Validates the controller's input against the fleet: a scheduled tick may name only services the
 * spec has. Throws InputValidationError naming each wrong field.
 */
export function parseControllerEvent(input: unknown, spec: FleetSpec): ControllerEvent {
  if (isObject(input) && 'detail-type' in input) {
    // Named only when a string: any other value (an object whose `toString` is not a function)
    // could throw on conversion before the schema gets to name the field.
    const detailType = input['detail-type'];
    const event = validate(CapacityEventSchema, input, typeof detailType === 'string' ? `EventBridge event "${detailType}"` : 'EventBridge event');
    return { kind: 'capacity-event', notice: noticeOf(event) };
  }
  const tick = validate(ScheduledTickSchema, input, 'scheduled tick');
  const known = Object.keys(spec.services);
  const problems = (tick.services ?? []).flatMap((s, i) =>
    known.includes(s) ? [] : [{ path: `services[${i}]`, message: `unknown service "${s}"; expected one of: ${known.join(', ')}` }],
  );
  if (problems.length > 0) throw new InputValidationError('scheduled tick', problems);
  return { kind: 'scheduled-tick', services: tick.services ? [...new Set(tick.services)] : null };
}

function noticeOf(event: CapacityEvent): CapacityNotice {
  const base = { id: event.id, detailType: event['detail-type'], at: Date.parse(event.time) };
  switch (event['detail-type']) {
    case 'EC2 Spot Instance Interruption Warning':
      return { ...base, subject: { instanceId: event.detail['instance-id'] }, signal: 'interruption', detail: `spot ${event.detail['instance-action']} of ${event.detail['instance-id']}` };
    case 'EC2 Capacity Reservation Instance Interruption Warning':
      return { ...base, subject: { instanceId: event.detail['instance-id'] }, signal: 'interruption', detail: `reservation ${event.detail['instance-action']} of ${event.detail['instance-id']}` };
    case 'EC2 Instance Rebalance Recommendation':
      return { ...base, subject: { instanceId: event.detail['instance-id'] }, signal: 'rebalance', detail: `rebalance recommended for ${event.detail['instance-id']}` };
    case 'EC2 Instance State-change Notification':
      return { ...base, subject: { instanceId: event.detail['instance-id'] }, signal: null, detail: `${event.detail['instance-id']} is ${event.detail.state}` };
    case 'Capacity Block Expiration Warning':
      return {
        ...base,
        subject: { reservationId: event.detail['capacity-reservation-id'] },
        signal: 'capacity-block-expiry',
        detail: `capacity block ${event.detail['capacity-reservation-id']} ends ${event.detail['end-date']}`,
      };
  }
}

/** `inf2.xlarge` → `inf2`. */
export function familyOf(instanceType: string): string {
  return instanceType.split('.')[0] ?? instanceType;
}

/** The pool signal for a notice whose instance type is known; null when the pool is not in the fleet. */
export function poolSignalOf(notice: CapacityNotice, instanceType: string | null, spec: FleetSpec): PoolSignal | null {
  if (notice.signal === null || instanceType === null) return null;
  const family = familyOf(instanceType);
  if (!spec.units.some((u) => u.family === family)) return null;
  return { family, kind: notice.signal, at: notice.at, detail: `${notice.detailType}: ${notice.detail} (${instanceType})` };
}

/** The services a capacity event's tick looks at: those with a unit in the pool, else all. */
export function servicesOfFamily(spec: FleetSpec, family: string | null): string[] | null {
  if (family === null) return null;
  const services = [...new Set(spec.units.filter((u) => u.family === family).map((u) => u.service))].sort();
  return services.length > 0 ? services : null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
