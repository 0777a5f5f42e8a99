package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	cdtypes "github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/internal/cli"
	"github.com/aviary-deploy/aviary/internal/examplefn"
	"github.com/aviary-deploy/aviary/sandbox"
)

// ec2Shop is a service on EC2 behind a load balancer, as its infrastructure code sets it up on
// the sandbox: target groups, Auto Scaling groups in them, CodeDeploy deployment groups whose
// triggers go to an SNS topic, and the keeper — cmd/aviary-keeper built as a provided.al2023
// bootstrap — subscribed to that topic.
type ec2Shop struct {
	t      *testing.T
	srv    *sandbox.Server
	as     *autoscaling.Client
	elb    *elb.Client
	sns    *sns.Client
	cd     *codedeploy.Client
	lambda *lambda.Client
	logs   *cloudwatchlogs.Client
	topic  string
	tgs    map[string]string // target group ARNs by name
}

const keeperFn = "aviary-keeper"

func newEC2Shop(t *testing.T) *ec2Shop {
	t.Helper()
	srv, err := sandbox.Start(context.Background(), sandbox.Options{UpdateDelay: -1, ControlRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	t.Setenv("AWS_ENDPOINT_URL", srv.URL)
	cfg, err := awsconfig.Load(context.Background(), awsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := &ec2Shop{t: t, srv: srv, as: autoscaling.NewFromConfig(cfg), elb: elb.NewFromConfig(cfg), sns: sns.NewFromConfig(cfg),
		cd: codedeploy.NewFromConfig(cfg), lambda: lambda.NewFromConfig(cfg), logs: cloudwatchlogs.NewFromConfig(cfg), tgs: map[string]string{}}
	ctx := context.Background()

	root, err := examplefn.Root(".")
	if err != nil {
		t.Fatal(err)
	}
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	zip, err := examplefn.BuildWith(bctx, root, "./cmd/aviary-keeper", nil)
	if err != nil {
		t.Fatalf("build the keeper: %v", err)
	}
	if _, err := s.lambda.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String(keeperFn), Runtime: lambdatypes.RuntimeProvidedal2023,
		Handler: aws.String("bootstrap"), Role: aws.String("arn:aws:iam::000000000000:role/aviary-keeper"),
		Code: &lambdatypes.FunctionCode{ZipFile: zip}, Timeout: aws.Int32(30)}); err != nil {
		t.Fatalf("CreateFunction: %v", err)
	}
	if err := lambda.NewFunctionActiveV2Waiter(s.lambda).Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(keeperFn)}, time.Minute); err != nil {
		t.Fatal(err)
	}
	// One notification at a time, as the README advises: two handled at once could both find
	// the replacement lacking its target groups and both attach them.
	if _, err := s.lambda.PutFunctionConcurrency(ctx, &lambda.PutFunctionConcurrencyInput{FunctionName: aws.String(keeperFn),
		ReservedConcurrentExecutions: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	topic, err := s.sns.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("deploys")})
	if err != nil {
		t.Fatal(err)
	}
	s.topic = aws.ToString(topic.TopicArn)
	if _, err := s.sns.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("lambda"),
		Endpoint: aws.String(fmt.Sprintf("arn:aws:lambda:%s:000000000000:function:%s", srv.Region, keeperFn))}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.cd.CreateApplication(ctx, &codedeploy.CreateApplicationInput{ApplicationName: aws.String("shop")}); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *ec2Shop) targetGroup(name string) string {
	s.t.Helper()
	out, err := s.elb.CreateTargetGroup(context.Background(), &elb.CreateTargetGroupInput{Name: aws.String(name), Protocol: elbtypes.ProtocolEnumHttp,
		Port: aws.Int32(80), VpcId: aws.String("vpc-0shop")})
	if err != nil {
		s.t.Fatalf("CreateTargetGroup %s: %v", name, err)
	}
	s.tgs[name] = aws.ToString(out.TargetGroups[0].TargetGroupArn)
	return s.tgs[name]
}

func (s *ec2Shop) autoScalingGroup(name string, tgs, clbs []string) {
	s.t.Helper()
	if _, err := s.as.CreateAutoScalingGroup(context.Background(), &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String(name),
		LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateName: aws.String(name), Version: aws.String("$Latest")},
		MinSize:        aws.Int32(1), MaxSize: aws.Int32(4), DesiredCapacity: aws.Int32(2), TargetGroupARNs: tgs, LoadBalancerNames: clbs,
		HealthCheckType: aws.String("ELB")}); err != nil {
		s.t.Fatalf("CreateAutoScalingGroup %s: %v", name, err)
	}
}

type groupSpec struct {
	name, asg   string
	blueGreen   bool
	waitReady   bool // STOP_DEPLOYMENT: wait in Ready for ContinueDeployment
	terminate   bool // TERMINATE the original at once on success, else KEEP_ALIVE
	events      []cdtypes.TriggerEventType
	targetGroup string // the deployment group's load balancer info
}

func (s *ec2Shop) deploymentGroup(g groupSpec) {
	s.t.Helper()
	in := &codedeploy.CreateDeploymentGroupInput{ApplicationName: aws.String("shop"), DeploymentGroupName: aws.String(g.name),
		ServiceRoleArn: aws.String("arn:aws:iam::000000000000:role/codedeploy"), AutoScalingGroups: []string{g.asg},
		LoadBalancerInfo:      &cdtypes.LoadBalancerInfo{TargetGroupInfoList: []cdtypes.TargetGroupInfo{{Name: aws.String(g.targetGroup)}}},
		TriggerConfigurations: []cdtypes.TriggerConfig{{TriggerName: aws.String("keeper"), TriggerTargetArn: aws.String(s.topic), TriggerEvents: g.events}},
	}
	if g.blueGreen {
		ready, blue := cdtypes.DeploymentReadyActionContinueDeployment, cdtypes.InstanceActionKeepAlive
		if g.waitReady {
			ready = cdtypes.DeploymentReadyActionStopDeployment
		}
		if g.terminate {
			blue = cdtypes.InstanceActionTerminate
		}
		in.DeploymentStyle = &cdtypes.DeploymentStyle{DeploymentType: cdtypes.DeploymentTypeBlueGreen, DeploymentOption: cdtypes.DeploymentOptionWithTrafficControl}
		in.BlueGreenDeploymentConfiguration = &cdtypes.BlueGreenDeploymentConfiguration{
			GreenFleetProvisioningOption:              &cdtypes.GreenFleetProvisioningOption{Action: cdtypes.GreenFleetProvisioningActionCopyAutoScalingGroup},
			DeploymentReadyOption:                     &cdtypes.DeploymentReadyOption{ActionOnTimeout: ready},
			TerminateBlueInstancesOnDeploymentSuccess: &cdtypes.BlueInstanceTerminationOption{Action: blue},
		}
	}
	if _, err := s.cd.CreateDeploymentGroup(context.Background(), in); err != nil {
		s.t.Fatalf("CreateDeploymentGroup %s: %v", g.name, err)
	}
}

func (s *ec2Shop) deploy(group string) string {
	s.t.Helper()
	out, err := s.cd.CreateDeployment(context.Background(), &codedeploy.CreateDeploymentInput{ApplicationName: aws.String("shop"), DeploymentGroupName: aws.String(group),
		Revision: &cdtypes.RevisionLocation{RevisionType: cdtypes.RevisionLocationTypeS3, S3Location: &cdtypes.S3Location{Bucket: aws.String("shop-builds"), Key: aws.String("web.zip"), BundleType: cdtypes.BundleTypeZip}}})
	if err != nil {
		s.t.Fatalf("CreateDeployment %s: %v", group, err)
	}
	return aws.ToString(out.DeploymentId)
}

// eventually polls ok until it holds, or fails the test after a generous deadline (the keeper
// runs as a process on a busy machine).
func (s *ec2Shop) eventually(what string, ok func() bool) {
	s.t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (s *ec2Shop) status(id string) cdtypes.DeploymentStatus {
	s.t.Helper()
	out, err := s.cd.GetDeployment(context.Background(), &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
	if err != nil {
		s.t.Fatal(err)
	}
	return out.DeploymentInfo.Status
}

func (s *ec2Shop) group(name string) *astypes.AutoScalingGroup {
	s.t.Helper()
	out, err := s.as.DescribeAutoScalingGroups(context.Background(), &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil {
		s.t.Fatal(err)
	}
	if len(out.AutoScalingGroups) == 0 {
		return nil
	}
	return &out.AutoScalingGroups[0]
}

// keeperLog is the keeper's log lines (its JSON slog lines and Lambda's platform lines) that
// contain every one of the substrings.
func (s *ec2Shop) keeperLog(subs ...string) []string {
	s.t.Helper()
	var lines []string
	in := &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/" + keeperFn)}
	for {
		out, err := s.logs.FilterLogEvents(context.Background(), in)
		if err != nil {
			return nil // the group appears with the first invocation
		}
		for _, e := range out.Events {
			m := aws.ToString(e.Message)
			if !slices.ContainsFunc(subs, func(sub string) bool { return !strings.Contains(m, sub) }) {
				lines = append(lines, m)
			}
		}
		if out.NextToken == nil {
			return lines
		}
		in.NextToken = out.NextToken
	}
}

// attaches counts the successful Attach calls in the sandbox's request log.
func (s *ec2Shop) attaches() int {
	n := 0
	for _, r := range s.srv.Requests() {
		if (r.Operation == "AttachLoadBalancerTargetGroups" || r.Operation == "AttachLoadBalancers") && r.Status < 300 {
			n++
		}
	}
	return n
}

// invoke invokes the keeper synchronously with an event, as SNS or EventBridge would deliver it.
func (s *ec2Shop) invoke(payload string) *lambda.InvokeOutput {
	s.t.Helper()
	out, err := s.lambda.Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(keeperFn), Payload: []byte(payload)})
	if err != nil {
		s.t.Fatalf("Invoke: %v", err)
	}
	return out
}

func snsEvent(message string) string {
	b, _ := json.Marshal(map[string]any{"Records": []any{map[string]any{"EventSource": "aws:sns", "EventVersion": "1.0",
		"Sns": map[string]any{"Type": "Notification", "Message": message, "TopicArn": "arn:aws:sns:us-east-1:000000000000:deploys"}}}})
	return string(b)
}

func TestKeeperPutsTheTargetGroupsBackOnTheReplacement(t *testing.T) {
	s := newEC2Shop(t)
	web, admin := s.targetGroup("shop-web"), s.targetGroup("shop-admin")
	s.autoScalingGroup("shop-web", []string{web, admin}, []string{"shop-classic"})
	s.autoScalingGroup("unrelated", nil, nil)
	s.deploymentGroup(groupSpec{name: "shop-prod", asg: "shop-web", blueGreen: true, waitReady: true, targetGroup: "shop-web",
		events: []cdtypes.TriggerEventType{cdtypes.TriggerEventTypeDeploymentStart, cdtypes.TriggerEventTypeDeploymentReady, cdtypes.TriggerEventTypeDeploymentSuccess}})

	id := s.deploy("shop-prod")
	replacement := "CodeDeploy_shop-prod_" + id

	t.Run("traffic is rerouted by hand: nothing attached at Ready, said so", func(t *testing.T) {
		s.eventually("the deployment to be Ready", func() bool { return s.status(id) == cdtypes.DeploymentStatusReady })
		s.eventually("the keeper to handle DeploymentStart and DeploymentReady", func() bool {
			return len(s.keeperLog(`"msg":"keeper: notification"`, id)) >= 2 && len(s.keeperLog("REPORT RequestId")) >= 2
		})
		g := s.group(replacement)
		if g == nil {
			t.Fatalf("CodeDeploy created no replacement group %s", replacement)
		}
		if len(g.TargetGroupARNs)+len(g.LoadBalancerNames) != 0 {
			t.Errorf("the replacement is behind production before the reroute: %v %v", g.TargetGroupARNs, g.LoadBalancerNames)
		}
		if n := s.attaches(); n != 0 {
			t.Errorf("%d Attach calls before the reroute, want none", n)
		}
		if len(s.keeperLog(`"msg":"keeper: nothing to do"`, id, "STOP_DEPLOYMENT", "acts at DeploymentSuccess")) < 1 {
			t.Errorf("the keeper did not say why it waits:\n%s", strings.Join(s.keeperLog(id), "\n"))
		}
	})

	t.Run("the CLI agrees and writes nothing", func(t *testing.T) {
		var out, errb bytes.Buffer
		if code := cli.Main(context.Background(), []string{"keeper", "--deployment-id", id, "-o", "json"}, &out, &errb); code != 0 {
			t.Fatalf("aviary keeper: exit %d\n%s", code, errb.String())
		}
		var doc struct {
			Schema   string `json:"schema"`
			Act      bool   `json:"act"`
			Attached bool   `json:"attached"`
			Reason   string `json:"reason"`
		}
		if err := json.Unmarshal(out.Bytes(), &doc); err != nil || doc.Schema != "aviary/v1" || doc.Act || doc.Attached || !strings.Contains(doc.Reason, "STOP_DEPLOYMENT") {
			t.Errorf("aviary keeper -o json: %v\n%s", err, out.String())
		}
		if n := s.attaches(); n != 0 {
			t.Errorf("%d Attach calls after the CLI, want none", n)
		}
	})

	t.Run("at DeploymentSuccess the replacement gets the target groups", func(t *testing.T) {
		if _, err := s.cd.ContinueDeployment(context.Background(), &codedeploy.ContinueDeploymentInput{DeploymentId: aws.String(id)}); err != nil {
			t.Fatal(err)
		}
		s.eventually("the deployment to succeed", func() bool { return s.status(id) == cdtypes.DeploymentStatusSucceeded })
		s.eventually("the keeper to attach at DeploymentSuccess", func() bool {
			return len(s.keeperLog(`"msg":"keeper: attached target groups"`, replacement)) == 1
		})
		// The deployment group now names the replacement, and the first release's original is
		// recorded nowhere CodeDeploy answers: the deployment group's load balancer info is what
		// is known of it.
		if g := s.group(replacement); !slices.Contains(g.TargetGroupARNs, web) {
			t.Errorf("the replacement has target groups %v, want %s among them", g.TargetGroupARNs, web)
		}
		if u := s.group("unrelated"); len(u.TargetGroupARNs) != 0 {
			t.Errorf("the keeper wrote to a group that is not the deployment's: %v", u.TargetGroupARNs)
		}
	})

	t.Run("a repeated notification writes nothing", func(t *testing.T) {
		before, attaches := len(s.keeperLog(`"msg":"keeper: nothing to do"`, id)), s.attaches()
		msg := fmt.Sprintf(`{"region":"us-east-1","accountId":"000000000000","eventTriggerName":"keeper","applicationName":"shop","deploymentId":%q,"deploymentGroupName":"shop-prod","status":"SUCCEEDED"}`, id)
		if _, err := s.sns.Publish(context.Background(), &sns.PublishInput{TopicArn: aws.String(s.topic), Message: aws.String(msg)}); err != nil {
			t.Fatal(err)
		}
		s.eventually("the keeper to handle the repeated notification", func() bool {
			return len(s.keeperLog(`"msg":"keeper: nothing to do"`, id, "already has")) > 0 && len(s.keeperLog(`"msg":"keeper: nothing to do"`, id)) > before
		})
		// The EventBridge event says the same.
		eb := fmt.Sprintf(`{"version":"0","id":"e1","detail-type":"CodeDeploy Deployment State-change Notification","source":"aws.codedeploy","account":"000000000000","region":"us-east-1","detail":{"application":"shop","deploymentGroup":"shop-prod","deploymentId":%q,"state":"SUCCESS"}}`, id)
		if out := s.invoke(eb); out.FunctionError != nil {
			t.Fatalf("the EventBridge event failed the function: %s", out.Payload)
		}
		if n := s.attaches(); n != attaches {
			t.Errorf("%d Attach calls after repeated notifications, want still %d", n, attaches)
		}
	})
}

func TestKeeperUsesTheDeploymentGroupWhenTheOriginalIsGone(t *testing.T) {
	s := newEC2Shop(t)
	orders, extra := s.targetGroup("shop-orders"), s.targetGroup("shop-orders-extra")
	s.autoScalingGroup("shop-orders", []string{orders, extra}, nil)
	// The deployment waits for a manual reroute, and meanwhile the original is deleted: when the
	// keeper acts, at DeploymentSuccess, only the deployment group's load balancer info still says
	// what the group served (shop-orders, not the original's extra target group).
	s.deploymentGroup(groupSpec{name: "orders-prod", asg: "shop-orders", blueGreen: true, waitReady: true, targetGroup: "shop-orders",
		events: []cdtypes.TriggerEventType{cdtypes.TriggerEventTypeDeploymentSuccess}})
	id := s.deploy("orders-prod")
	replacement := "CodeDeploy_orders-prod_" + id
	s.eventually("the deployment to be Ready", func() bool { return s.status(id) == cdtypes.DeploymentStatusReady })
	if _, err := s.as.DeleteAutoScalingGroup(context.Background(), &autoscaling.DeleteAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("shop-orders"), ForceDelete: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if s.group("shop-orders") != nil {
		t.Fatal("the original is still there")
	}
	if _, err := s.cd.ContinueDeployment(context.Background(), &codedeploy.ContinueDeploymentInput{DeploymentId: aws.String(id)}); err != nil {
		t.Fatal(err)
	}
	s.eventually("the keeper's log line", func() bool {
		return len(s.keeperLog(`"msg":"keeper: attached target groups"`, replacement, `"source":"deployment-group"`)) == 1
	})
	if g := s.group(replacement); !slices.Equal(g.TargetGroupARNs, []string{orders}) {
		t.Errorf("the replacement has %v, want the deployment group's %s", g.TargetGroupARNs, orders)
	}
	if n := s.attaches(); n != 1 {
		t.Errorf("%d Attach calls, want 1", n)
	}
}

// At DeploymentSuccess CodeDeploy has switched the deployment group to the replacement; the
// original, the previous release's group kept alive, still serves more than the deployment group's
// load balancer info names. The replacement gets all of it.
func TestKeeperFindsTheOriginalAliveAtSuccess(t *testing.T) {
	s := newEC2Shop(t)
	web, admin := s.targetGroup("shop-pay"), s.targetGroup("shop-pay-admin")
	s.autoScalingGroup("shop-pay", []string{web}, nil)
	s.deploymentGroup(groupSpec{name: "pay-prod", asg: "shop-pay", blueGreen: true, targetGroup: "shop-pay",
		events: []cdtypes.TriggerEventType{cdtypes.TriggerEventTypeDeploymentSuccess}})
	d1 := s.deploy("pay-prod")
	first := "CodeDeploy_pay-prod_" + d1
	s.eventually("the keeper to attach to d1's replacement", func() bool {
		g := s.group(first)
		return g != nil && slices.Equal(g.TargetGroupARNs, []string{web})
	})
	// The operators serve more from the release now live: an admin target group and a Classic
	// Load Balancer.
	ctx := context.Background()
	if _, err := s.as.AttachLoadBalancerTargetGroups(ctx, &autoscaling.AttachLoadBalancerTargetGroupsInput{AutoScalingGroupName: aws.String(first), TargetGroupARNs: []string{admin}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.as.AttachLoadBalancers(ctx, &autoscaling.AttachLoadBalancersInput{AutoScalingGroupName: aws.String(first), LoadBalancerNames: []string{"shop-classic"}}); err != nil {
		t.Fatal(err)
	}
	d2 := s.deploy("pay-prod")
	second := "CodeDeploy_pay-prod_" + d2
	s.eventually("d2 to succeed", func() bool { return s.status(d2) == cdtypes.DeploymentStatusSucceeded })
	s.eventually("the keeper to attach to d2's replacement", func() bool {
		return len(s.keeperLog(`"msg":"keeper: attached load balancers"`, second)) == 1
	})
	g := s.group(second)
	if !sameSet(g.TargetGroupARNs, []string{web, admin}) || !slices.Equal(g.LoadBalancerNames, []string{"shop-classic"}) {
		t.Errorf("d2's replacement has %v and %v, want the original's %v and [shop-classic]", g.TargetGroupARNs, g.LoadBalancerNames, []string{web, admin})
	}
	if s.group(first) == nil {
		t.Error("the original (KEEP_ALIVE) is gone")
	}
}

func TestKeeperLeavesOtherDeploymentsAndBadInputAlone(t *testing.T) {
	s := newEC2Shop(t)
	tg := s.targetGroup("shop-batch")
	s.autoScalingGroup("shop-batch", []string{tg}, nil)
	s.deploymentGroup(groupSpec{name: "batch-prod", asg: "shop-batch", targetGroup: "shop-batch",
		events: []cdtypes.TriggerEventType{cdtypes.TriggerEventTypeDeploymentStart, cdtypes.TriggerEventTypeDeploymentSuccess}})

	t.Run("an in-place deployment: nothing done, said so", func(t *testing.T) {
		id := s.deploy("batch-prod")
		s.eventually("the deployment to succeed", func() bool { return s.status(id) == cdtypes.DeploymentStatusSucceeded })
		s.eventually("the keeper to say why it does nothing", func() bool {
			return len(s.keeperLog(`"msg":"keeper: nothing to do"`, id, "not a blue/green deployment")) >= 2
		})
	})

	t.Run("a malformed SNS message: logged, no crash", func(t *testing.T) {
		out := s.invoke(snsEvent("this is not CodeDeploy's JSON"))
		if out.FunctionError != nil {
			t.Errorf("the function failed: %s", out.Payload)
		}
		if _, err := s.sns.Publish(context.Background(), &sns.PublishInput{TopicArn: aws.String(s.topic), Message: aws.String(`{"deploymentId": 42}`)}); err != nil {
			t.Fatal(err)
		}
		s.eventually("both malformed messages logged", func() bool {
			return len(s.keeperLog(`"msg":"keeper: ignored a notification it cannot read"`)) >= 2
		})
		if out := s.invoke(`{"not":"an event the keeper knows"}`); out.FunctionError != nil {
			t.Errorf("an unknown event failed the function: %s", out.Payload)
		}
	})

	t.Run("an unknown deployment: logged, no crash, no retry", func(t *testing.T) {
		out := s.invoke(snsEvent(`{"deploymentId":"d-UNKNOWN00","deploymentGroupName":"batch-prod","applicationName":"shop","status":"Ready"}`))
		if out.FunctionError != nil {
			t.Errorf("the function failed: %s", out.Payload)
		}
		if len(s.keeperLog(`"msg":"keeper: unknown deployment; nothing done"`, "d-UNKNOWN00")) != 1 {
			t.Errorf("the unknown deployment was not logged:\n%s", strings.Join(s.keeperLog("keeper"), "\n"))
		}
	})

	if n := s.attaches(); n != 0 {
		t.Errorf("%d Attach calls, want none", n)
	}
	if g := s.group("shop-batch"); !slices.Equal(g.TargetGroupARNs, []string{tg}) {
		t.Errorf("the in-place group's target groups changed: %v", g.TargetGroupARNs)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestKeeperLeavesAnOvertakenDeploymentAlone(t *testing.T) {
	s := newEC2Shop(t)
	web := s.targetGroup("shop-cart")
	s.autoScalingGroup("shop-cart", []string{web}, nil)
	s.deploymentGroup(groupSpec{name: "cart-prod", asg: "shop-cart", blueGreen: true, targetGroup: "shop-cart",
		events: []cdtypes.TriggerEventType{cdtypes.TriggerEventTypeDeploymentReady}})
	d1 := s.deploy("cart-prod")
	s.eventually("d1 to succeed", func() bool { return s.status(d1) == cdtypes.DeploymentStatusSucceeded })
	d2 := s.deploy("cart-prod")
	s.eventually("d2 to succeed", func() bool { return s.status(d2) == cdtypes.DeploymentStatusSucceeded })
	s.eventually("the keeper to attach to d2's replacement", func() bool {
		g := s.group("CodeDeploy_cart-prod_" + d2)
		return g != nil && slices.Equal(g.TargetGroupARNs, []string{web})
	})
	// d1's replacement, kept alive, is taken out of traffic, as one does with the previous release.
	old := "CodeDeploy_cart-prod_" + d1
	if _, err := s.as.DetachLoadBalancerTargetGroups(context.Background(), &autoscaling.DetachLoadBalancerTargetGroupsInput{
		AutoScalingGroupName: aws.String(old), TargetGroupARNs: []string{web}}); err != nil {
		t.Fatal(err)
	}
	before := s.attaches()

	// d1's notification arrives late, or again.
	out := s.invoke(snsEvent(fmt.Sprintf(`{"eventTriggerName":"keeper","applicationName":"shop","deploymentId":%q,"deploymentGroupName":"cart-prod","status":"READY"}`, d1)))
	if out.FunctionError != nil {
		t.Fatalf("the function failed: %s", out.Payload)
	}
	if n := s.attaches(); n != before {
		t.Errorf("%d Attach calls after d1's late notification, want still %d", n, before)
	}
	if g := s.group(old); len(g.TargetGroupARNs) != 0 {
		t.Errorf("d1's replacement is back in traffic: %v", g.TargetGroupARNs)
	}
	want := fmt.Sprintf("deployment %s is not the deployment group's latest (%s): nothing done", d1, d2)
	if len(s.keeperLog(`"msg":"keeper: nothing to do"`, want)) == 0 {
		t.Errorf("no log line %q:\n%s", want, strings.Join(s.keeperLog(d1), "\n"))
	}
}
