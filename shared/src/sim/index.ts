export { World, p99At } from './world.ts';
export { simulate, mulberry32 } from './run.ts';
export { loadScenario, parseScenario, SEED_SCENARIO_PATH } from './scenario.ts';
export { simPorts, MemoryStateStore } from './ports.ts';
export type * from './types.ts';
