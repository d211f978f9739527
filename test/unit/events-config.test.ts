// The functions' environment, validated at cold start: every problem at once, each naming the
// variable, so a deploy mistake shows on the first invoke.
import { describe, expect, it } from 'vitest';
import { controllerConfig, overrideConfig } from '../../shared/src/control/config.ts';
import { DEFAULT_FLEET_PATH } from '../../shared/src/spec/load.ts';
import { InputValidationError } from '../../shared/src/spec/validation.ts';

const OVERRIDE = { HWAI_STATE_TABLE: 'hwai-state', HWAI_ALERT_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:hwai-alerts' };
const CLUSTER = { HWAI_CLUSTER_NAME: 'hwai', HWAI_CLUSTER_ENDPOINT: 'https://ABCD.gr7.us-east-1.eks.amazonaws.com', HWAI_CLUSTER_CA: 'LS0tLS1CRUdJTi\nBDRVJU' };
const CONTROLLER = { ...OVERRIDE, ...CLUSTER, HWAI_LISTENER_ARN: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/hwai/50dc6c495c0c9188/f2f7dc8efc522ab2' };

function problems(fn: () => unknown): Array<{ path: string; message: string }> {
  try {
    fn();
  } catch (e) {
    if (e instanceof InputValidationError) return e.problems;
    throw e;
  }
  throw new Error('expected the environment to be refused');
}

describe('the controller’s environment', () => {
  it('gives the configuration the stack’s variables describe', () => {
    expect(controllerConfig({ ...CONTROLLER, HWAI_SPEC_FILE: '/var/task/fleet.yaml', HWAI_DRY_RUN: 'true', HWAI_POLICY: 'step' })).toEqual({
      specFile: '/var/task/fleet.yaml',
      stateTable: 'hwai-state',
      alertTopicArn: OVERRIDE.HWAI_ALERT_TOPIC_ARN,
      listenerArn: CONTROLLER.HWAI_LISTENER_ARN,
      cluster: { kind: 'eks', name: 'hwai', endpoint: CLUSTER.HWAI_CLUSTER_ENDPOINT, certificateAuthorityData: 'LS0tLS1CRUdJTiBDRVJU' },
      dryRun: true,
      policy: 'step',
    });
  });

  it('defaults to no dry run and, run from the repository, the default fleet; empty variables count as unset', () => {
    const config = controllerConfig({ ...CONTROLLER, HWAI_DRY_RUN: '', HWAI_POLICY: '' });

    expect(config.dryRun).toBe(false);
    expect(config.specFile).toBe(DEFAULT_FLEET_PATH);
    expect(config.policy).toBeUndefined();
  });

  it('takes a kubeconfig instead of the cluster variables for a local run', () => {
    const { HWAI_CLUSTER_NAME: _n, HWAI_CLUSTER_ENDPOINT: _e, HWAI_CLUSTER_CA: _c, ...local } = CONTROLLER;

    expect(controllerConfig({ ...local, KUBECONFIG: '/home/me/.kube/config' }).cluster).toEqual({ kind: 'kubeconfig', path: '/home/me/.kube/config' });
  });

  it.each([
    ['nothing set', {}, ['HWAI_STATE_TABLE', 'HWAI_ALERT_TOPIC_ARN', 'HWAI_CLUSTER_NAME', 'HWAI_CLUSTER_ENDPOINT', 'HWAI_CLUSTER_CA']],
    ['a topic name where the ARN belongs', { ...CONTROLLER, HWAI_ALERT_TOPIC_ARN: 'hwai-alerts' }, ['HWAI_ALERT_TOPIC_ARN']],
    ['a rule ARN where the listener belongs, and a dry run of "yes"', { ...CONTROLLER, HWAI_LISTENER_ARN: 'hwai-listener', HWAI_DRY_RUN: 'yes' }, ['HWAI_DRY_RUN', 'HWAI_LISTENER_ARN']],
    ['the cluster endpoint without its CA', { ...CONTROLLER, HWAI_CLUSTER_CA: undefined }, ['HWAI_CLUSTER_CA']],
    ['an unknown policy and a bad table name', { ...CONTROLLER, HWAI_POLICY: 'cheapest', HWAI_STATE_TABLE: 'a b' }, ['HWAI_POLICY', 'HWAI_STATE_TABLE']],
  ])('refuses %s, naming every variable at fault', (_what, env, variables) => {
    expect(problems(() => controllerConfig(env)).map((p) => p.path).sort()).toEqual([...variables].sort());
  });
});

describe('the override function’s environment', () => {
  it('needs only the table and the topic', () => {
    expect(overrideConfig(OVERRIDE)).toMatchObject({ stateTable: 'hwai-state', alertTopicArn: OVERRIDE.HWAI_ALERT_TOPIC_ARN, dryRun: false });
  });

  it('says what is missing', () => {
    expect(problems(() => overrideConfig({ HWAI_ALERT_TOPIC_ARN: OVERRIDE.HWAI_ALERT_TOPIC_ARN }))).toEqual([{ path: 'HWAI_STATE_TABLE', message: 'required: the variable is not set' }]);
  });
});
