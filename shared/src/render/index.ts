export { ACCELERATORS, FAMILIES, MODEL_TASKS, type AcceleratorKind } from './catalog.ts';
export { assertDeployable, MAX_UNITS_PER_RULE, targetGroupName, unitNamespace } from './deployable.ts';
export { renderFleet, DEFAULT_RENDER_OPTIONS, KEDA_AUTH_NAME, MODEL_SERVER_PORT, REQUEST_COUNT_METRIC, SERVICE_PORT, type FleetManifests, type KubernetesObject, type RenderOptions, type UnitManifests } from './fleet.ts';
export { manifestFiles, readRbacManifest, writeManifestFiles, listFiles, RBAC_FILE, RBAC_MANIFEST_PATH, type ManifestFile } from './files.ts';
