import { dirname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CalibrationSchema, FleetSpecSchema, type FleetSpec } from './schema.ts';
import { InputValidationError, readYamlFile, validate } from './validation.ts';

export const DEFAULT_FLEET_PATH = fileURLToPath(new URL('../../fleets/default.yaml', import.meta.url));

/** Validates a fleet spec object; `baseDir` resolves its calibration files. */
export function parseFleetSpec(data: unknown, source: string, baseDir?: string): FleetSpec {
  const spec = validate(FleetSpecSchema, data, source);
  return applyCalibrations(spec, baseDir ?? process.cwd(), source);
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
    const calibration = validate(CalibrationSchema, readYamlFile(path), path);
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
