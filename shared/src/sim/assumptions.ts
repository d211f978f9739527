/** What a reader of a simulation report should know about the model behind the numbers. */
export const SIMULATOR_ASSUMPTIONS: string[] = [
  'Throughput is per pod, requests per minute at the breaking point (maxRpm); a pod serves up to maxRpm and requests beyond it fail (counted as failed requests).',
  'p99 latency of a unit follows its utilisation u = offered / (ready pods × maxRpm): SLO × (0.55 + 0.45·u²) up to u = 1, so it crosses the SLO exactly at the breaking point, and SLO × (1 + 4·(u − 1)) beyond. The service p99 is the slowest unit carrying at least 1% of served traffic. The seed\'s latency column (Table 1) is informational only.',
  'KEDA/HPA: AverageValue target on the unit\'s ALB request count per minute (1-minute average), synced every 15 s, 10% tolerance, immediate scale-up (at most ×2 or +4 pods per sync), 300 s scale-down stabilisation, min/max replicas from the ScaledObject.',
  'Karpenter: one pod per accelerator node; a node is billed from launch; the pod is ready start-up seconds after launch (±30 s, seeded). A refused launch emits InsufficientCapacity and the family stays in the unavailable cache for 3 minutes.',
  'Capacity windows: `hold` lets running nodes stay but launches none; a number below the running count reclaims the newest nodes.',
  'The ALB splits demand by forward weight; a target group with no ready pod answers 503 (failed). Only services with demand in the scenario are simulated; a warm-up before minute 0 (not counted) lets the fleet settle.',
  'Cost is node-hours × on-demand price; pending pods cost nothing. The controller ticks every policy.tickSeconds with the same reconcile code as the Lambda, and at once on an EC2 interruption (an EventBridge event in production); Karpenter\'s refusals are only seen on the next tick, as in production.',
];
