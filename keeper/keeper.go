package keeper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	cdtypes "github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"
)

// CodeDeploy is what the keeper reads of CodeDeploy.
type CodeDeploy interface {
	GetDeployment(ctx context.Context, in *codedeploy.GetDeploymentInput, opts ...func(*codedeploy.Options)) (*codedeploy.GetDeploymentOutput, error)
	GetDeploymentGroup(ctx context.Context, in *codedeploy.GetDeploymentGroupInput, opts ...func(*codedeploy.Options)) (*codedeploy.GetDeploymentGroupOutput, error)
	ListDeployments(ctx context.Context, in *codedeploy.ListDeploymentsInput, opts ...func(*codedeploy.Options)) (*codedeploy.ListDeploymentsOutput, error)
}

// AutoScaling is what the keeper reads and writes of Auto Scaling.
type AutoScaling interface {
	DescribeAutoScalingGroups(ctx context.Context, in *autoscaling.DescribeAutoScalingGroupsInput, opts ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error)
	AttachLoadBalancerTargetGroups(ctx context.Context, in *autoscaling.AttachLoadBalancerTargetGroupsInput, opts ...func(*autoscaling.Options)) (*autoscaling.AttachLoadBalancerTargetGroupsOutput, error)
	AttachLoadBalancers(ctx context.Context, in *autoscaling.AttachLoadBalancersInput, opts ...func(*autoscaling.Options)) (*autoscaling.AttachLoadBalancersOutput, error)
}

// TargetGroups is what the keeper reads of Elastic Load Balancing: the ARNs of the target groups
// a deployment group names.
type TargetGroups interface {
	DescribeTargetGroups(ctx context.Context, in *elb.DescribeTargetGroupsInput, opts ...func(*elb.Options)) (*elb.DescribeTargetGroupsOutput, error)
}

var (
	_ CodeDeploy   = (*codedeploy.Client)(nil)
	_ AutoScaling  = (*autoscaling.Client)(nil)
	_ TargetGroups = (*elb.Client)(nil)
)

// Keeper keeps a blue/green deployment's replacement group in its target groups.
type Keeper struct {
	CodeDeploy   CodeDeploy
	AutoScaling  AutoScaling
	TargetGroups TargetGroups
	Log          *slog.Logger
}

// ErrUnknownDeployment is returned (wrapped) for a deployment CodeDeploy does not know.
var ErrUnknownDeployment = errors.New("unknown deployment")

// ErrMalformedAnswer is returned (wrapped) when CodeDeploy answers without what the keeper reads:
// asking again would get the same answer.
var ErrMalformedAnswer = errors.New("the answer lacks what the keeper reads")

// Result is what Keep did.
type Result struct {
	Plan
	// Attached: the plan's attachments were made (false in a dry run).
	Attached bool `json:"attached"`
	DryRun   bool `json:"dryRun,omitempty"`
}

// attachLimit is how many target groups or load balancers one Attach call takes.
const attachLimit = 10

// Keep decides what the deployment's replacement group lacks and, unless dryRun, attaches it.
func (k *Keeper) Keep(ctx context.Context, deploymentID string, dryRun bool) (Result, error) {
	log := k.logger().With("deploymentId", deploymentID)
	f, err := k.Facts(ctx, deploymentID)
	if err != nil {
		return Result{}, err
	}
	p := Decide(f)
	r := Result{Plan: p, DryRun: dryRun}
	attrs := []any{"application", f.Application, "deploymentGroup", f.DeploymentGroup, "status", f.Status, "replacement", p.Replacement,
		"source", string(p.Source), "reason", p.Reason}
	if !p.Act {
		log.Info("keeper: nothing to do", attrs...)
		return r, nil
	}
	if dryRun {
		log.Info("keeper: dry run, would attach", append(attrs, "targetGroups", p.AttachTargetGroups, "loadBalancers", p.AttachLoadBalancers)...)
		return r, nil
	}
	for chunk := range slices.Chunk(p.AttachTargetGroups, attachLimit) {
		if _, err := k.AutoScaling.AttachLoadBalancerTargetGroups(ctx, &autoscaling.AttachLoadBalancerTargetGroupsInput{
			AutoScalingGroupName: aws.String(p.Replacement), TargetGroupARNs: chunk}); err != nil {
			return r, fmt.Errorf("attach target groups %v to %s: %w", chunk, p.Replacement, err)
		}
		log.Info("keeper: attached target groups", "replacement", p.Replacement, "targetGroups", chunk, "source", string(p.Source))
	}
	for chunk := range slices.Chunk(p.AttachLoadBalancers, attachLimit) {
		if _, err := k.AutoScaling.AttachLoadBalancers(ctx, &autoscaling.AttachLoadBalancersInput{
			AutoScalingGroupName: aws.String(p.Replacement), LoadBalancerNames: chunk}); err != nil {
			return r, fmt.Errorf("attach load balancers %v to %s: %w", chunk, p.Replacement, err)
		}
		log.Info("keeper: attached load balancers", "replacement", p.Replacement, "loadBalancers", chunk, "source", string(p.Source))
	}
	r.Attached = true
	return r, nil
}

func (k *Keeper) logger() *slog.Logger {
	if k.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return k.Log
}

// Facts reads what Decide needs about a deployment.
func (k *Keeper) Facts(ctx context.Context, deploymentID string) (Facts, error) {
	f := Facts{DeploymentID: deploymentID}
	log := k.logger().With("deploymentId", deploymentID)
	d, err := k.CodeDeploy.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: aws.String(deploymentID)})
	if err != nil {
		var nf *cdtypes.DeploymentDoesNotExistException
		var bad *cdtypes.InvalidDeploymentIdException
		if errors.As(err, &nf) || errors.As(err, &bad) {
			return f, fmt.Errorf("deployment %s: %w (%w)", deploymentID, ErrUnknownDeployment, err)
		}
		return f, fmt.Errorf("get deployment %s: %w", deploymentID, err)
	}
	info := d.DeploymentInfo
	if info == nil {
		return f, fmt.Errorf("get deployment %s: %w: no deploymentInfo", deploymentID, ErrMalformedAnswer)
	}
	f.Application, f.DeploymentGroup, f.Status = aws.ToString(info.ApplicationName), aws.ToString(info.DeploymentGroupName), string(info.Status)
	f.BlueGreen = info.DeploymentStyle != nil && info.DeploymentStyle.DeploymentType == cdtypes.DeploymentTypeBlueGreen
	if !f.BlueGreen {
		return f, nil
	}
	g, err := k.CodeDeploy.GetDeploymentGroup(ctx, &codedeploy.GetDeploymentGroupInput{
		ApplicationName: info.ApplicationName, DeploymentGroupName: info.DeploymentGroupName})
	if err != nil {
		return f, fmt.Errorf("get deployment group %s of %s: %w", f.DeploymentGroup, f.Application, err)
	}
	dg := g.DeploymentGroupInfo
	if dg == nil {
		return f, fmt.Errorf("get deployment group %s: %w: no deploymentGroupInfo", f.DeploymentGroup, ErrMalformedAnswer)
	}
	f.Latest = latest(deploymentID, f.Status, dg)
	bg := info.BlueGreenDeploymentConfiguration
	if bg == nil {
		bg = dg.BlueGreenDeploymentConfiguration
	}
	f.Copy = bg != nil && bg.GreenFleetProvisioningOption != nil &&
		bg.GreenFleetProvisioningOption.Action == cdtypes.GreenFleetProvisioningActionCopyAutoScalingGroup
	if !f.Copy {
		return f, nil
	}
	f.ManualReroute = bg.DeploymentReadyOption != nil && bg.DeploymentReadyOption.ActionOnTimeout == cdtypes.DeploymentReadyActionStopDeployment
	// Only the group CodeDeploy names for this deployment group and deployment is written to,
	// whatever else the deployment's target instances say.
	f.Replacement = ReplacementName(f.DeploymentGroup, deploymentID)
	if f.Latest != deploymentID {
		return f, nil // overtaken: Decide leaves it alone, and the deployment group names another's groups
	}
	if f.Original, err = k.original(ctx, info, dg, f.Replacement); err != nil {
		return f, err
	}
	names := []string{f.Replacement}
	if f.Original != "" {
		names = append(names, f.Original)
	}
	asgs, err := k.AutoScaling.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: names})
	if err != nil {
		return f, fmt.Errorf("describe auto scaling groups %v: %w", names, err)
	}
	for _, a := range asgs.AutoScalingGroups {
		switch aws.ToString(a.AutoScalingGroupName) {
		case f.Replacement:
			f.ReplacementExists, f.ReplacementTargetGroups, f.ReplacementLoadBalancers = true, a.TargetGroupARNs, a.LoadBalancerNames
		case f.Original:
			f.OriginalExists, f.OriginalTargetGroups, f.OriginalLoadBalancers = true, a.TargetGroupARNs, a.LoadBalancerNames
		}
	}
	if !f.ReplacementExists {
		return f, nil
	}
	// The deployment group's load balancer info names what the group serves, whether or not the
	// original is still there to ask.
	lb := info.LoadBalancerInfo
	if lb == nil {
		lb = dg.LoadBalancerInfo
	}
	if lb == nil {
		return f, nil
	}
	var tgNames []string
	for _, t := range lb.TargetGroupInfoList {
		if n := aws.ToString(t.Name); n != "" {
			tgNames = append(tgNames, n)
		}
	}
	for _, e := range lb.ElbInfoList {
		if n := aws.ToString(e.Name); n != "" {
			f.GroupLoadBalancers = append(f.GroupLoadBalancers, n)
		}
	}
	if len(tgNames) > 0 {
		found, err := k.targetGroups(ctx, log, tgNames)
		if err != nil {
			return f, fmt.Errorf("describe target groups %v of deployment group %s: %w", tgNames, f.DeploymentGroup, err)
		}
		for _, n := range tgNames { // in the deployment group's order
			for _, t := range found {
				if aws.ToString(t.TargetGroupName) == n {
					f.GroupTargetGroups = append(f.GroupTargetGroups, aws.ToString(t.TargetGroupArn))
				}
			}
		}
	}
	return f, nil
}

// targetGroups describes the named target groups. DescribeTargetGroups fails as a whole with
// TargetGroupNotFound when one name is gone, so then each is described alone and the missing ones
// are logged and skipped: one deleted target group must not keep the others off the replacement.
func (k *Keeper) targetGroups(ctx context.Context, log *slog.Logger, names []string) ([]elbtypes.TargetGroup, error) {
	out, err := k.TargetGroups.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{Names: names})
	var nf *elbtypes.TargetGroupNotFoundException
	if err == nil || !errors.As(err, &nf) {
		if err != nil {
			return nil, err
		}
		return out.TargetGroups, nil
	}
	var found []elbtypes.TargetGroup
	for _, n := range names {
		out, err := k.TargetGroups.DescribeTargetGroups(ctx, &elb.DescribeTargetGroupsInput{Names: []string{n}})
		if errors.As(err, &nf) {
			log.Warn("keeper: the deployment group names a target group that does not exist; skipped", "targetGroup", n)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("describe target group %s: %w", n, err)
		}
		found = append(found, out.TargetGroups...)
	}
	return found, nil
}

// original is the name of the Auto Scaling group the deployment copied, "" when it cannot be
// known. GetDeployment says nothing of it (its targetInstances are the replacement environment).
// Until CodeDeploy switches the deployment group to the replacement, the deployment group names
// it. Afterwards (at DeploymentSuccess) it is the replacement of the deployment group's previous
// successful deployment, if that group is still there (KEEP_ALIVE): of the CodeDeploy-named groups
// of the group's succeeded deployments, the newest still alive other than this replacement. The
// first blue/green deployment's original, the group the deployment group was created with, is not
// recorded anywhere once the switch is made.
func (k *Keeper) original(ctx context.Context, info *cdtypes.DeploymentInfo, dg *cdtypes.DeploymentGroupInfo, replacement string) (string, error) {
	for _, a := range dg.AutoScalingGroups {
		if n := aws.ToString(a.Name); n != "" && n != replacement {
			return n, nil
		}
	}
	// One page (newest first in practice) is enough: the previous release is among the latest.
	out, err := k.CodeDeploy.ListDeployments(ctx, &codedeploy.ListDeploymentsInput{ApplicationName: info.ApplicationName,
		DeploymentGroupName: info.DeploymentGroupName, IncludeOnlyStatuses: []cdtypes.DeploymentStatus{cdtypes.DeploymentStatusSucceeded}})
	if err != nil {
		return "", fmt.Errorf("list the succeeded deployments of deployment group %s: %w", aws.ToString(info.DeploymentGroupName), err)
	}
	var names []string
	for _, id := range out.Deployments {
		if n := ReplacementName(aws.ToString(info.DeploymentGroupName), id); n != replacement {
			names = append(names, n)
		}
	}
	var newest *astypes.AutoScalingGroup
	for chunk := range slices.Chunk(names, describeLimit) {
		asgs, err := k.AutoScaling.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: chunk})
		if err != nil {
			return "", fmt.Errorf("describe the replacement groups of earlier deployments: %w", err)
		}
		for i, a := range asgs.AutoScalingGroups {
			if newest == nil || aws.ToTime(a.CreatedTime).After(aws.ToTime(newest.CreatedTime)) {
				newest = &asgs.AutoScalingGroups[i]
			}
		}
	}
	if newest == nil {
		return "", nil
	}
	return aws.ToString(newest.AutoScalingGroupName), nil
}

// describeLimit is how many names one DescribeAutoScalingGroups call is given.
const describeLimit = 50

// latest is the deployment group's latest deployment: id itself when the group's last attempted
// deployment is id, or id is Succeeded and the group's last successful one; otherwise the group's
// last attempted deployment ("none" when it names none).
func latest(id, status string, dg *cdtypes.DeploymentGroupInfo) string {
	attempted := ""
	if dg.LastAttemptedDeployment != nil {
		attempted = aws.ToString(dg.LastAttemptedDeployment.DeploymentId)
	}
	if attempted == id {
		return id
	}
	if status == string(cdtypes.DeploymentStatusSucceeded) && dg.LastSuccessfulDeployment != nil &&
		aws.ToString(dg.LastSuccessfulDeployment.DeploymentId) == id {
		return id
	}
	if attempted == "" {
		return "none"
	}
	return attempted
}

// Retryable reports whether trying again later could succeed: throttling, a fault of the service,
// or a failure to reach it. An error AWS answered as the caller's (an unknown deployment, a
// missing permission, a target group that does not exist) is not, nor is an answer that lacks
// what the keeper reads.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, ErrUnknownDeployment) || errors.Is(err, ErrMalformedAnswer) {
		return false
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return true // not an answer of AWS: the network, a timeout
	}
	if ae.ErrorFault() == smithy.FaultServer {
		return true
	}
	switch ae.ErrorCode() {
	case "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException", "ResourceContention",
		"ResourceContentionFault", "ServiceUnavailable", "InternalFailure":
		return true
	}
	return false
}
