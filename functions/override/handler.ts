// The override Lambda: set-mode, pin, clear and status, invoked directly (`hwai override`,
// `hwai status`). Built once at cold start; a bad environment fails it naming the variable.
import { overrideConfig } from '../../shared/src/control/config.ts';
import { overrideHandler } from '../../shared/src/control/override-lambda.ts';
import { overrideRuntime } from '../../shared/src/control/override-runtime.ts';

export const handler = overrideHandler(overrideRuntime(overrideConfig()));
