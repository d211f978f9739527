// The controller Lambda: EventBridge Scheduler ticks and EC2 capacity events. Configuration,
// fleet spec, SDK clients and the Kubernetes client are built once, at cold start; a bad
// environment fails the cold start naming the variable.
import { controllerConfig } from '../../shared/src/control/config.ts';
import { controllerHandler } from '../../shared/src/control/controller-lambda.ts';
import { controllerRuntime } from '../../shared/src/control/runtime.ts';

export const handler = controllerHandler(controllerRuntime(controllerConfig()));
