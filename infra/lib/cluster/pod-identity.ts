import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

export interface PodIdentityProps {
  cluster: eks.ICluster;
  /** The service account a Helm chart creates; EKS Pod Identity gives its pods the role. */
  serviceAccount: { namespace: string; name: string };
  statements: iam.PolicyStatement[];
}

/** An IAM role for one Kubernetes service account, through EKS Pod Identity (no OIDC provider). */
export class PodIdentity extends Construct {
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: PodIdentityProps) {
    super(scope, id);
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('pods.eks.amazonaws.com'),
      description: `EKS Pod Identity of ${props.serviceAccount.namespace}/${props.serviceAccount.name}`,
    });
    this.role.assumeRolePolicy!.addStatements(
      new iam.PolicyStatement({ actions: ['sts:TagSession'], principals: [new iam.ServicePrincipal('pods.eks.amazonaws.com')] }),
    );
    new iam.Policy(this, 'Policy', { roles: [this.role], statements: props.statements });
    new eks.CfnPodIdentityAssociation(this, 'Association', {
      clusterName: props.cluster.clusterName,
      namespace: props.serviceAccount.namespace,
      serviceAccount: props.serviceAccount.name,
      roleArn: this.role.roleArn,
    });
  }
}
