package iampolicy

import "fmt"

// KeeperInput is what the keeper's policy covers: the deployment groups whose deployments it
// keeps ("*" for every deployment group of the application, or of every application).
type KeeperInput struct {
	Partition   string // default "aws"
	Region      string
	Account     string
	Application string // "" means every application
	// DeploymentGroup "" means every deployment group of the application, and then the Attach
	// statement's resource is every deployment group's replacement groups
	// (autoScalingGroupName/CodeDeploy_*_d-*), whatever the application.
	DeploymentGroup string
}

// Keeper writes the least-privilege policy of package keeper (cmd/aviary-keeper, `aviary
// keeper`): read the deployment groups' deployments (ListDeployments finds the previous release's
// group once CodeDeploy has switched the deployment group to the replacement), describe Auto
// Scaling groups and target groups (neither action has resource-level permissions, so they are on
// *), and attach target groups and Classic Load Balancers only to the replacement groups CodeDeploy
// creates for these deployment groups, CodeDeploy_<deploymentGroup>_<deploymentId>. The Lambda
// also needs AWSLambdaBasicExecutionRole for its log.
func Keeper(in KeeperInput) Policy {
	part := in.Partition
	if part == "" {
		part = "aws"
	}
	app, dg := in.Application, in.DeploymentGroup
	if app == "" {
		app = "*"
	}
	if dg == "" {
		dg = "*"
	}
	group := fmt.Sprintf("arn:%s:codedeploy:%s:%s:deploymentgroup:%s/%s", part, in.Region, in.Account, app, dg)
	replacements := fmt.Sprintf("arn:%s:autoscaling:%s:%s:autoScalingGroup:*:autoScalingGroupName/CodeDeploy_%s_d-*", part, in.Region, in.Account, dg)
	return Policy{Version: "2012-10-17", Statement: []Statement{
		{Sid: "ReadTheDeployments", Effect: "Allow", Action: []string{"codedeploy:GetDeployment", "codedeploy:GetDeploymentGroup", "codedeploy:ListDeployments"}, Resource: []string{group}},
		{Sid: "DescribeGroups", Effect: "Allow", Action: []string{"autoscaling:DescribeAutoScalingGroups", "elasticloadbalancing:DescribeTargetGroups"}, Resource: []string{"*"}},
		{Sid: "AttachToReplacementGroupsOnly", Effect: "Allow", Action: []string{"autoscaling:AttachLoadBalancerTargetGroups", "autoscaling:AttachLoadBalancers"}, Resource: []string{replacements}},
	}}
}
