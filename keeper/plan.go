// Package keeper puts an Auto Scaling group's target groups back after CodeDeploy replaces it.
//
// A CodeDeploy blue/green deployment whose green fleet is provisioned with
// COPY_AUTO_SCALING_GROUP creates a replacement Auto Scaling group,
// CodeDeploy_<deploymentGroupName>_<deploymentId>, copying the original group's configuration —
// except its target groups and Classic Load Balancers. The replacement then scales in by
// terminating instances without deregistering them first, and the load balancer goes on sending
// them traffic. The keeper, given a deployment, attaches to the replacement what the original had
// (or, when the original is gone, what the deployment group's load balancer info names).
//
// The rules it keeps: it writes only to the deployment's own replacement group, whose name
// CodeDeploy derives from the deployment group and the deployment; it only ever attaches, never
// detaches; it attaches only what the replacement lacks, so that a second run makes no write; and
// a deployment that is not a blue/green copy, or has failed, is left alone, with the reason said.
//
// When it acts: attaching a target group to an Auto Scaling group registers the group's running
// instances in it, so attaching to the replacement puts the green instances behind production.
// For a deployment group whose deployment-ready option is STOP_DEPLOYMENT (someone reroutes traffic
// by hand, after testing the green fleet) the keeper therefore attaches nothing before the
// deployment has Succeeded: it acts at DeploymentSuccess. With CONTINUE_DEPLOYMENT CodeDeploy
// reroutes as soon as the green fleet is ready, so the keeper acts at the first notification that
// finds the replacement (DeploymentReady): the green instances take traffic moments earlier than
// CodeDeploy would give it to them, and the deployment group still names the original then, so its
// target groups are known; DeploymentSuccess is the second chance.
//
// [Decide] is the decision, a pure function of the [Facts]; [Keeper] gathers the facts from
// CodeDeploy, Auto Scaling and Elastic Load Balancing and applies the decision.
package keeper

import (
	"fmt"
	"slices"
)

// ReplacementName is the name CodeDeploy gives the Auto Scaling group it creates for a
// blue/green deployment that copies the original group.
func ReplacementName(deploymentGroup, deploymentID string) string {
	return "CodeDeploy_" + deploymentGroup + "_" + deploymentID
}

// Source says where the target groups to attach come from.
type Source string

const (
	// FromOriginal: the original Auto Scaling group's target groups and load balancers.
	// (with what the deployment group's load balancer info adds).
	FromOriginal Source = "original-group"
	// FromDeploymentGroup: the deployment group's load balancer info (targetGroupInfoList,
	// elbInfoList) alone, used when the original group is gone or cannot be known.
	FromDeploymentGroup Source = "deployment-group"
)

// Facts are what the keeper learnt about a deployment.
type Facts struct {
	DeploymentID    string
	Application     string
	DeploymentGroup string
	// Status is the deployment's status (Created, InProgress, Ready, Succeeded, Failed, Stopped...).
	Status string
	// Latest is the deployment group's latest deployment as the keeper sees it: its
	// lastAttemptedDeployment, or for a Succeeded deployment that is its lastSuccessfulDeployment,
	// this one. A deployment that is not the latest has been overtaken: its replacement group may be
	// out of traffic, and whatever the deployment group names now belongs to a newer deployment.
	Latest string
	// BlueGreen: the deployment's type is BLUE_GREEN; Copy: its green fleet is provisioned with
	// COPY_AUTO_SCALING_GROUP.
	BlueGreen, Copy bool
	// ManualReroute: the deployment-ready option is STOP_DEPLOYMENT, so traffic is rerouted only
	// when someone continues the deployment.
	ManualReroute bool

	// Replacement is the replacement group's name; ReplacementExists says whether Auto Scaling
	// has it, with its target groups and load balancers.
	Replacement              string
	ReplacementExists        bool
	ReplacementTargetGroups  []string
	ReplacementLoadBalancers []string

	// Original is the group the deployment copies ("" when the deployment group names none but
	// the replacement); OriginalExists says whether Auto Scaling still has it.
	Original              string
	OriginalExists        bool
	OriginalTargetGroups  []string
	OriginalLoadBalancers []string

	// GroupTargetGroups are the ARNs of the target groups the deployment group's load balancer
	// info names; GroupLoadBalancers the Classic Load Balancers it names.
	GroupTargetGroups  []string
	GroupLoadBalancers []string
}

// Plan is what the keeper decided.
type Plan struct {
	DeploymentID string `json:"deploymentId"`
	Replacement  string `json:"replacement,omitempty"`
	// Act: something is to be attached. When false, Reason says why nothing is done.
	Act    bool   `json:"act"`
	Reason string `json:"reason"`
	Source Source `json:"source,omitempty"`
	// AttachTargetGroups and AttachLoadBalancers are what the replacement lacks.
	AttachTargetGroups  []string `json:"attachTargetGroups,omitempty"`
	AttachLoadBalancers []string `json:"attachLoadBalancers,omitempty"`
	// TargetGroups and LoadBalancers are what the replacement should have in all.
	TargetGroups  []string `json:"targetGroups,omitempty"`
	LoadBalancers []string `json:"loadBalancers,omitempty"`
}

// Decide decides what to attach to the replacement group.
func Decide(f Facts) Plan {
	p := Plan{DeploymentID: f.DeploymentID}
	switch {
	case !f.BlueGreen:
		p.Reason = "not a blue/green deployment: CodeDeploy deploys in place and the Auto Scaling group keeps its target groups"
		return p
	case !f.Copy:
		p.Reason = "the deployment group does not copy its Auto Scaling group (green fleet: DISCOVER_EXISTING): CodeDeploy creates no replacement group"
		return p
	}
	p.Replacement = f.Replacement
	if f.Latest != f.DeploymentID {
		p.Reason = fmt.Sprintf("deployment %s is not the deployment group's latest (%s): nothing done", f.DeploymentID, f.Latest)
		return p
	}
	switch f.Status {
	case "Failed", "Stopped":
		p.Reason = fmt.Sprintf("the deployment is %s: its replacement group is not kept", f.Status)
		return p
	}
	if f.ManualReroute && f.Status != "Succeeded" {
		p.Reason = fmt.Sprintf("the deployment group reroutes traffic by hand (STOP_DEPLOYMENT) and the deployment is %s: attaching now would register the replacement's instances behind production before the reroute; the keeper acts at DeploymentSuccess", f.Status)
		return p
	}
	if !f.ReplacementExists {
		p.Reason = fmt.Sprintf("the replacement group %s does not exist yet (the deployment is %s); a later notification will find it", f.Replacement, f.Status)
		return p
	}
	// The original's (when it is still there) and the deployment group's load balancer info's:
	// the original may serve more than the deployment group names, and the deployment group names
	// what the original served even when the original is gone or cannot be known.
	p.Source = FromDeploymentGroup
	var tgs, lbs []string
	if f.OriginalExists {
		p.Source, tgs, lbs = FromOriginal, f.OriginalTargetGroups, f.OriginalLoadBalancers
	}
	p.TargetGroups, p.LoadBalancers = union(tgs, f.GroupTargetGroups), union(lbs, f.GroupLoadBalancers)
	p.AttachTargetGroups = missing(p.TargetGroups, f.ReplacementTargetGroups)
	p.AttachLoadBalancers = missing(p.LoadBalancers, f.ReplacementLoadBalancers)
	switch {
	case len(p.TargetGroups)+len(p.LoadBalancers) == 0:
		p.Reason = fmt.Sprintf("the %s names no target groups or load balancers", describe(p.Source, f.Original))
	case len(p.AttachTargetGroups)+len(p.AttachLoadBalancers) == 0:
		p.Reason = fmt.Sprintf("the replacement group %s already has the %s's target groups and load balancers", f.Replacement, describe(p.Source, f.Original))
	default:
		p.Act = true
		p.Reason = fmt.Sprintf("the replacement group %s lacks %d target group(s) and %d load balancer(s) of the %s",
			f.Replacement, len(p.AttachTargetGroups), len(p.AttachLoadBalancers), describe(p.Source, f.Original))
	}
	return p
}

func describe(s Source, original string) string {
	if s == FromOriginal {
		return "original group " + original + " and the deployment group's load balancer info"
	}
	if original != "" {
		return "deployment group's load balancer info (the original group " + original + " is gone)"
	}
	return "deployment group's load balancer info (the original group is no longer known)"
}

// union is a then what b adds, without repeats.
func union(a, b []string) []string {
	return append(slices.Clone(missing(a, nil)), missing(b, a)...)
}

// missing is want without what have has, in want's order, without repeats.
func missing(want, have []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(have, w) && !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out
}
