import * as iam from 'aws-cdk-lib/aws-iam';

/** The resources the control plane's functions touch; every statement below is scoped to them. */
export interface ControlResources {
  tableArn: string;
  topicArn: string;
  topicKeyArn: string;
  /** The listener rules whose forward weights the controller rewrites. */
  ruleArns: string[];
}

const statement = (sid: string, actions: string[], resources: string[]) => new iam.PolicyStatement({ sid, actions, resources });

function alerting(r: ControlResources): iam.PolicyStatement[] {
  return [statement('PublishAlerts', ['sns:Publish'], [r.topicArn]), statement('EncryptAlerts', ['kms:GenerateDataKey', 'kms:Decrypt'], [r.topicKeyArn])];
}

/**
 * The controller: reads rules, target health and metrics, rewrites the forward weights of its
 * rules, reads capacity signals, keeps its state and lease, and alerts. Describe*, GetMetricData
 * and the EC2 capacity reads have no resource-level permissions (the service allows only `*`).
 */
export function controllerStatements(r: ControlResources): iam.PolicyStatement[] {
  return [
    statement('ReadRouting', ['elasticloadbalancing:DescribeRules', 'elasticloadbalancing:DescribeListeners', 'elasticloadbalancing:DescribeTargetGroups', 'elasticloadbalancing:DescribeTargetHealth', 'elasticloadbalancing:DescribeTags'], ['*']),
    statement('WriteWeights', ['elasticloadbalancing:ModifyRule'], r.ruleArns),
    statement('ReadMetrics', ['cloudwatch:GetMetricData'], ['*']),
    statement('ReadCapacity', ['ec2:DescribeCapacityReservations', 'ec2:DescribeInstances', 'ec2:GetSpotPlacementScores', 'ec2:DescribeInstanceTypeOfferings'], ['*']),
    statement('KeepState', ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem'], [r.tableArn]),
    ...alerting(r),
  ];
}

/** The override function: records an override in the state and announces it. */
export function overrideStatements(r: ControlResources): iam.PolicyStatement[] {
  return [statement('KeepState', ['dynamodb:GetItem', 'dynamodb:PutItem'], [r.tableArn]), ...alerting(r)];
}
