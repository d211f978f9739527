import type { TickRecord } from '../sim/run.ts';

/**
 * How far two runs of the same scenario decided alike, tick by tick: the mode of each service,
 * the forward weight of each unit and its KEDA settings (floor, max replicas, target), as each
 * run left them in its world. Exact equality: the same observation must give the same decision.
 */

export interface TickDifference {
  /** World second of the tick (negative in the warm-up). */
  second: number;
  /** e.g. `sd21 mode`, `sd21-inf2-neuron weight`, `sd21-inf2-neuron floor`. */
  what: string;
  inProcess: unknown;
  twin: unknown;
}

export interface Agreement {
  /** Ticks present in both runs, compared pairwise. */
  compared: number;
  equal: number;
  /** Ticks only one run has (a run stopped early). */
  unmatched: number;
  /** The first tick that differs, each of its differences. */
  firstDifference: TickDifference[] | null;
  /** World seconds of every tick that differs. */
  differingSeconds: number[];
}

export function compareTicks(inProcess: ReadonlyArray<TickRecord>, twin: ReadonlyArray<TickRecord>): Agreement {
  const compared = Math.min(inProcess.length, twin.length);
  let equal = 0;
  let firstDifference: TickDifference[] | null = null;
  const differingSeconds: number[] = [];
  for (let i = 0; i < compared; i++) {
    const differences = tickDifferences(inProcess[i]!, twin[i]!);
    if (differences.length === 0) {
      equal++;
      continue;
    }
    firstDifference ??= differences;
    differingSeconds.push(inProcess[i]!.second);
  }
  return { compared, equal, unmatched: Math.abs(inProcess.length - twin.length), firstDifference, differingSeconds };
}

export function tickDifferences(a: TickRecord, b: TickRecord): TickDifference[] {
  const out: TickDifference[] = [];
  const differ = (what: string, x: unknown, y: unknown) => {
    if (x !== y) out.push({ second: a.second, what, inProcess: x, twin: y });
  };
  differ('tick second', a.second, b.second);
  const services = new Set([...a.services, ...b.services].map((s) => s.service));
  for (const service of [...services].sort()) {
    const x = a.services.find((s) => s.service === service);
    const y = b.services.find((s) => s.service === service);
    differ(`${service} mode`, x?.mode, y?.mode);
    const units = new Set([...Object.keys(x?.weights ?? {}), ...Object.keys(y?.weights ?? {})]);
    for (const unit of [...units].sort()) {
      differ(`${unit} weight`, x?.weights[unit], y?.weights[unit]);
      differ(`${unit} floor`, x?.scaling[unit]?.minReplicas, y?.scaling[unit]?.minReplicas);
      differ(`${unit} max replicas`, x?.scaling[unit]?.maxReplicas, y?.scaling[unit]?.maxReplicas);
      differ(`${unit} target rpm`, x?.scaling[unit]?.targetRpm, y?.scaling[unit]?.targetRpm);
    }
  }
  return out;
}

/** One line a person reads: `ticks compared 270, equal 270` and the first difference if any. */
export function formatAgreement(a: Agreement): string {
  const lines = [`ticks compared: ${a.compared}, ticks equal: ${a.equal}${a.unmatched ? `, ticks in one run only: ${a.unmatched}` : ''}`];
  if (a.firstDifference) {
    const first = a.firstDifference[0]!;
    lines.push(`first difference at world second ${first.second} (minute ${first.second / 60}):`);
    for (const d of a.firstDifference) lines.push(`  ${d.what}: in-process ${JSON.stringify(d.inProcess)}, twin ${JSON.stringify(d.twin)}`);
  } else {
    lines.push('first difference: none');
  }
  return lines.join('\n');
}
