package keeper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	cdtypes "github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"
)

func TestDecide(t *testing.T) {
	base := Facts{DeploymentID: "d-AAAAAAAAA", DeploymentGroup: "dg", Status: "InProgress", BlueGreen: true, Copy: true, Latest: "d-AAAAAAAAA",
		Replacement: "CodeDeploy_dg_d-AAAAAAAAA", ReplacementExists: true, Original: "web", OriginalExists: true,
		OriginalTargetGroups: []string{"tg1", "tg2"}, OriginalLoadBalancers: []string{"clb"}, GroupTargetGroups: []string{"tg1"}}
	for _, tc := range []struct {
		name      string
		mod       func(*Facts)
		act       bool
		tgs, lbs  []string
		source    Source
		reasonHas string
	}{
		{"attaches what the original has", func(*Facts) {}, true, []string{"tg1", "tg2"}, []string{"clb"}, FromOriginal, "lacks 2 target group(s) and 1"},
		{"only what is missing", func(f *Facts) { f.ReplacementTargetGroups = []string{"tg2"} }, true, []string{"tg1"}, []string{"clb"}, FromOriginal, "lacks 1"},
		{"nothing when all are there", func(f *Facts) {
			f.ReplacementTargetGroups, f.ReplacementLoadBalancers = []string{"tg2", "tg1", "extra"}, []string{"clb"}
		}, false, nil, nil, FromOriginal, "already has"},
		{"original and deployment group together", func(f *Facts) { f.GroupTargetGroups, f.GroupLoadBalancers = []string{"tg9", "tg2"}, []string{"clb2"} }, true, []string{"tg1", "tg2", "tg9"}, []string{"clb", "clb2"}, FromOriginal, "lacks 3 target group(s) and 2"},
		{"original gone: deployment group", func(f *Facts) { f.OriginalExists, f.GroupTargetGroups = false, []string{"tg9"} }, true, []string{"tg9"}, nil, FromDeploymentGroup, "is gone"},
		{"in place", func(f *Facts) { f.BlueGreen = false }, false, nil, nil, "", "not a blue/green deployment"},
		{"discover existing", func(f *Facts) { f.Copy = false }, false, nil, nil, "", "DISCOVER_EXISTING"},
		{"failed", func(f *Facts) { f.Status = "Failed" }, false, nil, nil, "", "is Failed"},
		{"overtaken by a newer deployment", func(f *Facts) { f.Latest = "d-BBBBBBBBB" }, false, nil, nil, "", "deployment d-AAAAAAAAA is not the deployment group's latest (d-BBBBBBBBB): nothing done"},
		{"manual reroute, not yet rerouted", func(f *Facts) { f.ManualReroute, f.Status = true, "Ready" }, false, nil, nil, "", "acts at DeploymentSuccess"},
		{"manual reroute, rerouted", func(f *Facts) { f.ManualReroute, f.Status = true, "Succeeded" }, true, []string{"tg1", "tg2"}, []string{"clb"}, FromOriginal, "lacks 2"},
		{"replacement not yet", func(f *Facts) { f.ReplacementExists = false }, false, nil, nil, "", "does not exist yet"},
		{"no source names any", func(f *Facts) { f.OriginalExists, f.GroupTargetGroups = false, nil }, false, nil, nil, FromDeploymentGroup, "names no target groups"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := base
			tc.mod(&f)
			p := Decide(f)
			if p.Act != tc.act || !slices.Equal(p.AttachTargetGroups, tc.tgs) || !slices.Equal(p.AttachLoadBalancers, tc.lbs) || p.Source != tc.source {
				t.Errorf("Decide = %+v, want act %v, target groups %v, load balancers %v, source %q", p, tc.act, tc.tgs, tc.lbs, tc.source)
			}
			if !strings.Contains(p.Reason, tc.reasonHas) {
				t.Errorf("reason %q lacks %q", p.Reason, tc.reasonHas)
			}
		})
	}
}

func TestParse(t *testing.T) {
	sns := func(msgs ...string) string {
		var recs []string
		for _, m := range msgs {
			recs = append(recs, `{"EventSource":"aws:sns","Sns":{"Message":`+quote(m)+`}}`)
		}
		return `{"Records":[` + strings.Join(recs, ",") + `]}`
	}
	ns, errs := Parse([]byte(sns(`{"deploymentId":"d-ABCDEFGH1","eventTriggerName":"keeper","status":"Ready"}`,
		`{"deploymentId":"d-ABCDEFGH1","instanceId":"i-1","instanceStatus":"Succeeded"}`, `not json`)))
	if len(ns) != 1 || ns[0].DeploymentID != "d-ABCDEFGH1" || ns[0].Event != "keeper Ready" {
		t.Errorf("notifications = %+v", ns)
	}
	if len(errs) != 1 || !errors.Is(errs[0], ErrMalformed) {
		t.Errorf("errors = %v, want one malformed record", errs)
	}
	ns, errs = Parse([]byte(`{"version":"0","detail-type":"CodeDeploy Deployment State-change Notification","source":"aws.codedeploy","detail":{"deploymentId":"d-ZZZZZZZZ9","state":"READY","application":"a","deploymentGroup":"g"}}`))
	if len(errs) != 0 || len(ns) != 1 || ns[0].DeploymentID != "d-ZZZZZZZZ9" {
		t.Errorf("EventBridge: %+v, %v", ns, errs)
	}
	for _, bad := range []string{`[1]`, `{}`, `{"detail-type":"Other","detail":{}}`, sns(`{"deploymentId":"x"}`)} {
		if ns, errs := Parse([]byte(bad)); len(ns) != 0 || len(errs) == 0 || !errors.Is(errs[0], ErrMalformed) {
			t.Errorf("Parse(%s) = %v, %v; want ErrMalformed", bad, ns, errs)
		}
	}
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// fakes hold one deployment, its group, and Auto Scaling groups, and count writes.
type fakeCD struct {
	dep       *cdtypes.DeploymentInfo
	dg        *cdtypes.DeploymentGroupInfo
	err       error
	succeeded []string // the deployment group's succeeded deployments, newest first
}

func (f *fakeCD) ListDeployments(context.Context, *codedeploy.ListDeploymentsInput, ...func(*codedeploy.Options)) (*codedeploy.ListDeploymentsOutput, error) {
	return &codedeploy.ListDeploymentsOutput{Deployments: f.succeeded}, nil
}

func (f *fakeCD) GetDeployment(_ context.Context, in *codedeploy.GetDeploymentInput, _ ...func(*codedeploy.Options)) (*codedeploy.GetDeploymentOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	return &codedeploy.GetDeploymentOutput{DeploymentInfo: f.dep}, nil
}

func (f *fakeCD) GetDeploymentGroup(context.Context, *codedeploy.GetDeploymentGroupInput, ...func(*codedeploy.Options)) (*codedeploy.GetDeploymentGroupOutput, error) {
	return &codedeploy.GetDeploymentGroupOutput{DeploymentGroupInfo: f.dg}, nil
}

type fakeAS struct {
	groups map[string]*astypes.AutoScalingGroup
	writes int
}

func (f *fakeAS) DescribeAutoScalingGroups(_ context.Context, in *autoscaling.DescribeAutoScalingGroupsInput, _ ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error) {
	out := &autoscaling.DescribeAutoScalingGroupsOutput{}
	for _, n := range in.AutoScalingGroupNames {
		if g, ok := f.groups[n]; ok {
			out.AutoScalingGroups = append(out.AutoScalingGroups, *g)
		}
	}
	return out, nil
}

func (f *fakeAS) AttachLoadBalancerTargetGroups(_ context.Context, in *autoscaling.AttachLoadBalancerTargetGroupsInput, _ ...func(*autoscaling.Options)) (*autoscaling.AttachLoadBalancerTargetGroupsOutput, error) {
	f.writes++
	g := f.groups[*in.AutoScalingGroupName]
	g.TargetGroupARNs = append(g.TargetGroupARNs, in.TargetGroupARNs...)
	return &autoscaling.AttachLoadBalancerTargetGroupsOutput{}, nil
}

func (f *fakeAS) AttachLoadBalancers(_ context.Context, in *autoscaling.AttachLoadBalancersInput, _ ...func(*autoscaling.Options)) (*autoscaling.AttachLoadBalancersOutput, error) {
	f.writes++
	g := f.groups[*in.AutoScalingGroupName]
	g.LoadBalancerNames = append(g.LoadBalancerNames, in.LoadBalancerNames...)
	return &autoscaling.AttachLoadBalancersOutput{}, nil
}

// fakeELB has the target groups it names (every name when nil) and, as AWS does, fails the whole
// call with TargetGroupNotFound when one name is unknown.
type fakeELB struct{ names []string }

func (f fakeELB) DescribeTargetGroups(_ context.Context, in *elb.DescribeTargetGroupsInput, _ ...func(*elb.Options)) (*elb.DescribeTargetGroupsOutput, error) {
	out := &elb.DescribeTargetGroupsOutput{}
	for _, n := range in.Names {
		if f.names != nil && !slices.Contains(f.names, n) {
			return nil, &elbtypes.TargetGroupNotFoundException{Message: aws.String("One or more target groups not found")}
		}
		out.TargetGroups = append(out.TargetGroups, elbtypes.TargetGroup{TargetGroupName: aws.String(n), TargetGroupArn: aws.String("arn:tg/" + n)})
	}
	return out, nil
}

func TestKeepIsIdempotentAndFallsBack(t *testing.T) {
	id := "d-AAAAAAAAA"
	repl := ReplacementName("dg", id)
	cd := &fakeCD{
		dep: &cdtypes.DeploymentInfo{DeploymentId: aws.String(id), ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("dg"),
			Status: cdtypes.DeploymentStatusInProgress, DeploymentStyle: &cdtypes.DeploymentStyle{DeploymentType: cdtypes.DeploymentTypeBlueGreen},
			BlueGreenDeploymentConfiguration: &cdtypes.BlueGreenDeploymentConfiguration{GreenFleetProvisioningOption: &cdtypes.GreenFleetProvisioningOption{Action: cdtypes.GreenFleetProvisioningActionCopyAutoScalingGroup}},
			LoadBalancerInfo:                 &cdtypes.LoadBalancerInfo{TargetGroupInfoList: []cdtypes.TargetGroupInfo{{Name: aws.String("a")}}}},
		dg: &cdtypes.DeploymentGroupInfo{AutoScalingGroups: []cdtypes.AutoScalingGroup{{Name: aws.String("web")}},
			LastAttemptedDeployment: &cdtypes.LastDeploymentInfo{DeploymentId: aws.String(id)}},
	}
	as := &fakeAS{groups: map[string]*astypes.AutoScalingGroup{
		"web":   {AutoScalingGroupName: aws.String("web"), TargetGroupARNs: []string{"arn:tg/a", "arn:tg/b"}},
		repl:    {AutoScalingGroupName: aws.String(repl)},
		"other": {AutoScalingGroupName: aws.String("other")},
	}}
	k := &Keeper{CodeDeploy: cd, AutoScaling: as, TargetGroups: fakeELB{}}
	ctx := context.Background()

	if r, err := k.Keep(ctx, id, true); err != nil || r.Attached || !r.Act || as.writes != 0 {
		t.Fatalf("dry run: %+v, %v, %d writes", r, err, as.writes)
	}
	r, err := k.Keep(ctx, id, false)
	if err != nil || !r.Attached || as.writes != 1 || !slices.Equal(as.groups[repl].TargetGroupARNs, []string{"arn:tg/a", "arn:tg/b"}) {
		t.Fatalf("first run: %+v, %v; replacement %v", r, err, as.groups[repl].TargetGroupARNs)
	}
	if r, err := k.Keep(ctx, id, false); err != nil || r.Act || as.writes != 1 {
		t.Fatalf("second run wrote: %+v, %v, %d writes", r, err, as.writes)
	}
	if len(as.groups["other"].TargetGroupARNs) != 0 || len(as.groups["web"].TargetGroupARNs) != 2 {
		t.Error("the keeper touched a group that is not the replacement")
	}

	// The original gone: the deployment group's target group info.
	delete(as.groups, "web")
	as.groups[repl].TargetGroupARNs = nil
	if r, err := k.Keep(ctx, id, false); err != nil || r.Source != FromDeploymentGroup || !slices.Equal(as.groups[repl].TargetGroupARNs, []string{"arn:tg/a"}) {
		t.Fatalf("fallback: %+v, %v; replacement %v", r, err, as.groups[repl].TargetGroupARNs)
	}

	cd.dep = nil
	if _, err := k.Keep(ctx, id, false); !errors.Is(err, ErrMalformedAnswer) || Retryable(err) {
		t.Errorf("an answer without deploymentInfo: %v (retryable %v)", err, Retryable(err))
	}

	cd.err = &cdtypes.DeploymentDoesNotExistException{Message: aws.String("no")}
	if _, err := k.Keep(ctx, id, false); !errors.Is(err, ErrUnknownDeployment) || Retryable(err) {
		t.Errorf("unknown deployment: %v (retryable %v)", err, Retryable(err))
	}
}

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&smithy.GenericAPIError{Code: "Throttling"}, true},
		{&smithy.GenericAPIError{Code: "InternalFailure", Fault: smithy.FaultServer}, true},
		{&smithy.GenericAPIError{Code: "AccessDenied"}, false},
		{&smithy.GenericAPIError{Code: "ValidationError"}, false},
		{errors.New("dial tcp: connection refused"), true},
		{ErrUnknownDeployment, false},
		{fmt.Errorf("get deployment d-1: %w: no deploymentInfo", ErrMalformedAnswer), false},
	} {
		if got := Retryable(tc.err); got != tc.want {
			t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// d1 succeeded and was kept alive; d2 has since replaced d1's group. A late or repeated d1
// notification must not put d1's replacement back behind the load balancer.
func TestKeepLeavesAnOvertakenDeploymentAlone(t *testing.T) {
	d1, d2 := "d-AAAAAAAA1", "d-AAAAAAAA2"
	cd := &fakeCD{
		dep: &cdtypes.DeploymentInfo{DeploymentId: aws.String(d1), ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("dg"),
			Status: cdtypes.DeploymentStatusSucceeded, DeploymentStyle: &cdtypes.DeploymentStyle{DeploymentType: cdtypes.DeploymentTypeBlueGreen},
			BlueGreenDeploymentConfiguration: &cdtypes.BlueGreenDeploymentConfiguration{GreenFleetProvisioningOption: &cdtypes.GreenFleetProvisioningOption{Action: cdtypes.GreenFleetProvisioningActionCopyAutoScalingGroup}}},
		dg: &cdtypes.DeploymentGroupInfo{AutoScalingGroups: []cdtypes.AutoScalingGroup{{Name: aws.String(ReplacementName("dg", d2))}},
			LastAttemptedDeployment:  &cdtypes.LastDeploymentInfo{DeploymentId: aws.String(d2), Status: cdtypes.DeploymentStatusSucceeded},
			LastSuccessfulDeployment: &cdtypes.LastDeploymentInfo{DeploymentId: aws.String(d2), Status: cdtypes.DeploymentStatusSucceeded}},
	}
	as := &fakeAS{groups: map[string]*astypes.AutoScalingGroup{
		ReplacementName("dg", d2): {AutoScalingGroupName: aws.String(ReplacementName("dg", d2)), TargetGroupARNs: []string{"arn:tg/prod"}},
		ReplacementName("dg", d1): {AutoScalingGroupName: aws.String(ReplacementName("dg", d1))},
	}}
	k := &Keeper{CodeDeploy: cd, AutoScaling: as, TargetGroups: fakeELB{}}
	r, err := k.Keep(context.Background(), d1, false)
	if err != nil || r.Act || as.writes != 0 {
		t.Fatalf("Keep(%s) = %+v, %v, %d writes; want nothing done", d1, r, err, as.writes)
	}
	if want := "deployment d-AAAAAAAA1 is not the deployment group's latest (d-AAAAAAAA2): nothing done"; r.Reason != want {
		t.Errorf("reason %q, want %q", r.Reason, want)
	}
	// d2 failed after d1 succeeded: d1 is still the group's last successful deployment and kept.
	cd.dg.LastAttemptedDeployment.Status = cdtypes.DeploymentStatusFailed
	cd.dg.LastSuccessfulDeployment.DeploymentId = aws.String(d1)
	cd.dg.AutoScalingGroups = []cdtypes.AutoScalingGroup{{Name: aws.String(ReplacementName("dg", d1))}}
	if r, _ := k.Keep(context.Background(), d1, true); strings.Contains(r.Reason, "not the deployment group's latest") {
		t.Errorf("d1 after a failed d2: %q", r.Reason)
	}
}

// At DeploymentSuccess CodeDeploy has switched the deployment group to the replacement. The
// original, d1's replacement kept alive, still serves web and admin and a Classic Load Balancer,
// while the deployment group's load balancer info names only web: the replacement gets them all.
func TestKeepFindsTheOriginalAtSuccess(t *testing.T) {
	d1, d2 := "d-AAAAAAAA1", "d-AAAAAAAA2"
	orig, repl := ReplacementName("dg", d1), ReplacementName("dg", d2)
	cd := &fakeCD{
		dep: &cdtypes.DeploymentInfo{DeploymentId: aws.String(d2), ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("dg"),
			Status: cdtypes.DeploymentStatusSucceeded, DeploymentStyle: &cdtypes.DeploymentStyle{DeploymentType: cdtypes.DeploymentTypeBlueGreen},
			BlueGreenDeploymentConfiguration: &cdtypes.BlueGreenDeploymentConfiguration{GreenFleetProvisioningOption: &cdtypes.GreenFleetProvisioningOption{Action: cdtypes.GreenFleetProvisioningActionCopyAutoScalingGroup}},
			LoadBalancerInfo:                 &cdtypes.LoadBalancerInfo{TargetGroupInfoList: []cdtypes.TargetGroupInfo{{Name: aws.String("web")}}}},
		dg: &cdtypes.DeploymentGroupInfo{AutoScalingGroups: []cdtypes.AutoScalingGroup{{Name: aws.String(repl)}},
			LastAttemptedDeployment:  &cdtypes.LastDeploymentInfo{DeploymentId: aws.String(d2)},
			LastSuccessfulDeployment: &cdtypes.LastDeploymentInfo{DeploymentId: aws.String(d2)}},
		succeeded: []string{d2, d1, "d-AAAAAAAA0"},
	}
	as := &fakeAS{groups: map[string]*astypes.AutoScalingGroup{
		orig: {AutoScalingGroupName: aws.String(orig), TargetGroupARNs: []string{"arn:tg/web", "arn:tg/admin"}, LoadBalancerNames: []string{"clb"}},
		repl: {AutoScalingGroupName: aws.String(repl)},
	}}
	k := &Keeper{CodeDeploy: cd, AutoScaling: as, TargetGroups: fakeELB{}}
	r, err := k.Keep(context.Background(), d2, false)
	if err != nil || !r.Attached || r.Source != FromOriginal {
		t.Fatalf("Keep = %+v, %v", r, err)
	}
	if g := as.groups[repl]; !slices.Equal(g.TargetGroupARNs, []string{"arn:tg/web", "arn:tg/admin"}) || !slices.Equal(g.LoadBalancerNames, []string{"clb"}) {
		t.Errorf("the replacement has %v and %v, want the original's web, admin and clb", g.TargetGroupARNs, g.LoadBalancerNames)
	}
}

// The deployment group names a target group that was deleted since: the others are still attached.
func TestKeepSkipsADeletedTargetGroup(t *testing.T) {
	id := "d-AAAAAAAAA"
	repl := ReplacementName("dg", id)
	cd := &fakeCD{
		dep: &cdtypes.DeploymentInfo{DeploymentId: aws.String(id), ApplicationName: aws.String("app"), DeploymentGroupName: aws.String("dg"),
			Status: cdtypes.DeploymentStatusSucceeded, DeploymentStyle: &cdtypes.DeploymentStyle{DeploymentType: cdtypes.DeploymentTypeBlueGreen},
			BlueGreenDeploymentConfiguration: &cdtypes.BlueGreenDeploymentConfiguration{GreenFleetProvisioningOption: &cdtypes.GreenFleetProvisioningOption{Action: cdtypes.GreenFleetProvisioningActionCopyAutoScalingGroup}},
			LoadBalancerInfo: &cdtypes.LoadBalancerInfo{TargetGroupInfoList: []cdtypes.TargetGroupInfo{
				{Name: aws.String("web")}, {Name: aws.String("gone")}, {Name: aws.String("admin")}}}},
		dg: &cdtypes.DeploymentGroupInfo{AutoScalingGroups: []cdtypes.AutoScalingGroup{{Name: aws.String(repl)}},
			LastAttemptedDeployment: &cdtypes.LastDeploymentInfo{DeploymentId: aws.String(id)}},
	}
	as := &fakeAS{groups: map[string]*astypes.AutoScalingGroup{repl: {AutoScalingGroupName: aws.String(repl)}}}
	var logs strings.Builder
	k := &Keeper{CodeDeploy: cd, AutoScaling: as, TargetGroups: fakeELB{names: []string{"web", "admin"}}, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	r, err := k.Keep(context.Background(), id, false)
	if err != nil || !r.Attached {
		t.Fatalf("Keep = %+v, %v", r, err)
	}
	if got, want := as.groups[repl].TargetGroupARNs, []string{"arn:tg/web", "arn:tg/admin"}; !slices.Equal(got, want) {
		t.Errorf("the replacement has %v, want %v", got, want)
	}
	if !strings.Contains(logs.String(), "targetGroup=gone") {
		t.Errorf("the missing target group was not logged:\n%s", logs.String())
	}
}
