package iampolicy_test

import (
	"testing"

	"github.com/aviary-deploy/aviary/iampolicy"
)

func TestKeeperPolicyWritesOnlyToReplacementGroups(t *testing.T) {
	p := iampolicy.Keeper(iampolicy.KeeperInput{Region: "eu-west-1", Account: "123456789012", Application: "shop", DeploymentGroup: "shop-prod"})
	asg := "arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:0f1e2d3c-1111-2222-3333-444455556666:autoScalingGroupName/"
	for _, tc := range []struct {
		action, resource string
		want             bool
	}{
		{"codedeploy:GetDeployment", "arn:aws:codedeploy:eu-west-1:123456789012:deploymentgroup:shop/shop-prod", true},
		{"codedeploy:GetDeploymentGroup", "arn:aws:codedeploy:eu-west-1:123456789012:deploymentgroup:shop/shop-prod", true},
		{"codedeploy:ListDeployments", "arn:aws:codedeploy:eu-west-1:123456789012:deploymentgroup:shop/shop-prod", true},
		{"codedeploy:GetDeployment", "arn:aws:codedeploy:eu-west-1:123456789012:deploymentgroup:shop/other", false},
		{"codedeploy:CreateDeployment", "arn:aws:codedeploy:eu-west-1:123456789012:deploymentgroup:shop/shop-prod", false},
		{"autoscaling:DescribeAutoScalingGroups", "*", true},
		{"elasticloadbalancing:DescribeTargetGroups", "*", true},
		{"autoscaling:AttachLoadBalancerTargetGroups", asg + "CodeDeploy_shop-prod_d-ABCDEFGHI", true},
		{"autoscaling:AttachLoadBalancers", asg + "CodeDeploy_shop-prod_d-ABCDEFGHI", true},
		{"autoscaling:AttachLoadBalancerTargetGroups", asg + "shop-web", false},
		{"autoscaling:AttachLoadBalancerTargetGroups", asg + "CodeDeploy_other_d-ABCDEFGHI", false},
		{"autoscaling:DetachLoadBalancerTargetGroups", asg + "CodeDeploy_shop-prod_d-ABCDEFGHI", false},
	} {
		if got := p.Allows(tc.action, tc.resource); got != tc.want {
			t.Errorf("Allows(%s, %s) = %v, want %v", tc.action, tc.resource, got, tc.want)
		}
	}
}

// Without a deployment group the keeper may attach to every deployment group's replacement: the
// documented width of the flag left out.
func TestKeeperPolicyWithoutDeploymentGroupCoversEveryReplacement(t *testing.T) {
	p := iampolicy.Keeper(iampolicy.KeeperInput{Region: "eu-west-1", Account: "123456789012", Application: "shop"})
	asg := "arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:0f1e2d3c-1111-2222-3333-444455556666:autoScalingGroupName/"
	if !p.Allows("autoscaling:AttachLoadBalancerTargetGroups", asg+"CodeDeploy_any-group_d-ABCDEFGHI") {
		t.Error("the policy without --deployment-group does not cover every replacement group")
	}
	if p.Allows("autoscaling:AttachLoadBalancerTargetGroups", asg+"shop-web") {
		t.Error("the policy allows attaching to a group CodeDeploy did not create")
	}
}
