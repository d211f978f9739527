import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CalibrationSchema, crossReferenceProblems, FleetSpecSchema, type FleetSpec } from './schema.ts';
import { formatPath, InputValidationError, readYamlFile, validate, type InputProblem } from './validation.ts';

export const DEFAULT_FLEET_PATH = fileURLToPath(new URL('../../fleets/default.yaml', import.meta.url));

/**
 * Validates a fleet spec object; `baseDir` resolves its calibration files. Every problem is
 * reported at once: schema errors and cross-references together, and a problem inside a unit
 * says which unit by name as well as by index.
 */
export function parseFleetSpec(data: unknown, source: string, baseDir?: string): FleetSpec {
  let spec: FleetSpec;
  try {
    spec = validate(FleetSpecSchema, data, source);
  } catch (e) {
    if (!(e instanceof InputValidationError)) throw e;
    const key = (p: InputProblem) => `${p.path}\u0000${p.message}`;
    const reported = new Set(e.problems.map(key));
    const cross = crossReferenceProblems(data).map((p) => ({ path: formatPath(p.path), message: p.message })).filter((p) => !reported.has(key(p)));
    throw new InputValidationError(source, [...e.problems, ...cross].map((p) => withUnitName(p, data)), { cause: e });
  }
  return applyCalibrations(spec, baseDir ?? process.cwd(), source);
}

/** `units[3].maxRpm: …` gains `(unit "sd21-g6-triton")` when the input names that unit. */
function withUnitName(problem: InputProblem, data: unknown): InputProblem {
  const index = /^units\[(\d+)\]/.exec(problem.path)?.[1];
  const units = (data as { units?: unknown } | null)?.units;
  const name = index !== undefined && Array.isArray(units) ? (units[Number(index)] as { name?: unknown } | null)?.name : undefined;
  return typeof name === 'string' ? { ...problem, message: `${problem.message} (unit "${name}")` } : problem;
}

export function loadFleetSpec(path: string = DEFAULT_FLEET_PATH): FleetSpec {
  return parseFleetSpec(readYamlFile(path), path, dirname(path));
}

/** Calibrated numbers replace a unit's estimates; a calibration for an unknown unit is an error. */
function applyCalibrations(spec: FleetSpec, baseDir: string, source: string): FleetSpec {
  if (spec.calibrationFiles.length === 0) return spec;
  const units = spec.units.map((u) => ({ ...u }));
  spec.calibrationFiles.forEach((file, i) => {
    const path = isAbsolute(file) ? file : resolve(baseDir, file);
    let data: unknown;
    try {
      data = readYamlFile(path);
    } catch (e) {
      // Say which field named the file, not only that some file could not be read.
      if (!(e instanceof InputValidationError)) throw e;
      throw new InputValidationError(source, e.problems.map((p) => ({ path: `calibrationFiles[${i}]`, message: `${path}: ${p.path === '(file)' ? '' : `${p.path}: `}${p.message}` })), { cause: e });
    }
    const calibration = validate(CalibrationSchema, data, path);
    for (const [name, measured] of Object.entries(calibration.units)) {
      const unit = units.find((u) => u.name === name);
      if (!unit) {
        throw new InputValidationError(source, [{ path: `calibrationFiles[${i}]`, message: `${path} calibrates unknown unit "${name}"` }]);
      }
      unit.maxRpm = measured.maxRpm;
      unit.latencySeconds = measured.latencySeconds;
      unit.estimate = false;
    }
  });
  return { ...spec, units };
}

export function unitsOf(spec: FleetSpec, service: string) {
  return spec.units.filter((u) => u.service === service);
}
