package sandbox_test

import (
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
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
)

// blueGreen is an EC2 service as a team's infrastructure code would set it up: a target group,
// an Auto Scaling group in it, an SNS topic, and a CodeDeploy blue/green deployment group that
// copies the Auto Scaling group and sends its triggers to the topic.
type blueGreen struct {
	as     *autoscaling.Client
	elb    *elb.Client
	sns    *sns.Client
	cd     *codedeploy.Client
	tg     string
	topic  string
	app    string
	dg     string
	asg    string
	waitTC bool
}

func newBlueGreen(t *testing.T, e *env, ready cdtypes.DeploymentReadyAction, blue cdtypes.InstanceAction) *blueGreen {
	t.Helper()
	c := ctx(t)
	b := &blueGreen{as: autoscaling.NewFromConfig(e.cfg), elb: elb.NewFromConfig(e.cfg), sns: sns.NewFromConfig(e.cfg),
		cd: codedeploy.NewFromConfig(e.cfg), app: "shop", dg: "shop-prod", asg: "shop-web"}
	tg, err := b.elb.CreateTargetGroup(c, &elb.CreateTargetGroupInput{Name: aws.String("shop-web"), Protocol: elbtypes.ProtocolEnumHttp,
		Port: aws.Int32(8080), VpcId: aws.String("vpc-0abc")})
	if err != nil {
		t.Fatalf("CreateTargetGroup: %v", err)
	}
	b.tg = aws.ToString(tg.TargetGroups[0].TargetGroupArn)
	if _, err := b.as.CreateAutoScalingGroup(c, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String(b.asg),
		LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateName: aws.String("shop-web"), Version: aws.String("$Latest")},
		MinSize:        aws.Int32(2), MaxSize: aws.Int32(6), DesiredCapacity: aws.Int32(3), TargetGroupARNs: []string{b.tg},
		LoadBalancerNames: []string{"shop-classic"}, HealthCheckType: aws.String("ELB"),
		Tags: []astypes.Tag{{Key: aws.String("team"), Value: aws.String("shop"), PropagateAtLaunch: aws.Bool(true)}}}); err != nil {
		t.Fatalf("CreateAutoScalingGroup: %v", err)
	}
	topic, err := b.sns.CreateTopic(c, &sns.CreateTopicInput{Name: aws.String("shop-deploys")})
	if err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	b.topic = aws.ToString(topic.TopicArn)
	if _, err := b.cd.CreateApplication(c, &codedeploy.CreateApplicationInput{ApplicationName: aws.String(b.app), ComputePlatform: cdtypes.ComputePlatformServer}); err != nil {
		t.Fatalf("CreateApplication: %v", err)
	}
	if _, err := b.cd.CreateDeploymentGroup(c, &codedeploy.CreateDeploymentGroupInput{
		ApplicationName: aws.String(b.app), DeploymentGroupName: aws.String(b.dg), ServiceRoleArn: aws.String("arn:aws:iam::000000000000:role/codedeploy"),
		AutoScalingGroups: []string{b.asg},
		DeploymentStyle:   &cdtypes.DeploymentStyle{DeploymentType: cdtypes.DeploymentTypeBlueGreen, DeploymentOption: cdtypes.DeploymentOptionWithTrafficControl},
		BlueGreenDeploymentConfiguration: &cdtypes.BlueGreenDeploymentConfiguration{
			GreenFleetProvisioningOption:              &cdtypes.GreenFleetProvisioningOption{Action: cdtypes.GreenFleetProvisioningActionCopyAutoScalingGroup},
			DeploymentReadyOption:                     &cdtypes.DeploymentReadyOption{ActionOnTimeout: ready},
			TerminateBlueInstancesOnDeploymentSuccess: &cdtypes.BlueInstanceTerminationOption{Action: blue, TerminationWaitTimeInMinutes: 0},
		},
		LoadBalancerInfo: &cdtypes.LoadBalancerInfo{TargetGroupInfoList: []cdtypes.TargetGroupInfo{{Name: aws.String("shop-web")}}},
		TriggerConfigurations: []cdtypes.TriggerConfig{{TriggerName: aws.String("keeper"), TriggerTargetArn: aws.String(b.topic),
			TriggerEvents: []cdtypes.TriggerEventType{cdtypes.TriggerEventTypeDeploymentStart, cdtypes.TriggerEventTypeDeploymentReady, cdtypes.TriggerEventTypeDeploymentSuccess}}},
	}); err != nil {
		t.Fatalf("CreateDeploymentGroup: %v", err)
	}
	return b
}

func (b *blueGreen) deploy(t *testing.T) string {
	t.Helper()
	out, err := b.cd.CreateDeployment(ctx(t), &codedeploy.CreateDeploymentInput{ApplicationName: aws.String(b.app), DeploymentGroupName: aws.String(b.dg),
		Revision: &cdtypes.RevisionLocation{RevisionType: cdtypes.RevisionLocationTypeS3, S3Location: &cdtypes.S3Location{Bucket: aws.String("shop-builds"), Key: aws.String("web-42.zip"), BundleType: cdtypes.BundleTypeZip}}})
	if err != nil {
		t.Fatalf("CreateDeployment: %v", err)
	}
	return aws.ToString(out.DeploymentId)
}

// waitStatus polls GetDeployment until the deployment has the status.
func (b *blueGreen) waitStatus(t *testing.T, id string, want cdtypes.DeploymentStatus) *cdtypes.DeploymentInfo {
	t.Helper()
	var last cdtypes.DeploymentStatus
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		out, err := b.cd.GetDeployment(ctx(t), &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
		if err != nil {
			t.Fatalf("GetDeployment: %v", err)
		}
		if last = out.DeploymentInfo.Status; last == want {
			return out.DeploymentInfo
		}
	}
	t.Fatalf("deployment %s is %s, want %s", id, last, want)
	return nil
}

func (b *blueGreen) group(t *testing.T, name string) *astypes.AutoScalingGroup {
	t.Helper()
	out, err := b.as.DescribeAutoScalingGroups(ctx(t), &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil {
		t.Fatalf("DescribeAutoScalingGroups: %v", err)
	}
	if len(out.AutoScalingGroups) == 0 {
		return nil
	}
	return &out.AutoScalingGroups[0]
}

func TestBlueGreenCopiesTheGroupWithoutItsTargetGroups(t *testing.T) {
	e := start(t, fast)
	c := ctx(t)
	b := newBlueGreen(t, e, cdtypes.DeploymentReadyActionStopDeployment, cdtypes.InstanceActionTerminate)
	e.createFunction(t, "listener", zips.good)
	fnARN := "arn:aws:lambda:" + e.srv.Region + ":000000000000:function:listener"
	if _, err := b.sns.Subscribe(c, &sns.SubscribeInput{TopicArn: aws.String(b.topic), Protocol: aws.String("lambda"), Endpoint: aws.String(fnARN)}); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}

	id := b.deploy(t)
	if !strings.HasPrefix(id, "d-") || len(id) != 11 {
		t.Errorf("deployment ID %q is not d- and 9 characters", id)
	}
	info := b.waitStatus(t, id, cdtypes.DeploymentStatusReady)
	replacement := "CodeDeploy_shop-prod_" + id
	if info.TargetInstances == nil || len(info.TargetInstances.AutoScalingGroups) != 1 || info.TargetInstances.AutoScalingGroups[0] != replacement {
		t.Fatalf("targetInstances = %+v, want the replacement %s", info.TargetInstances, replacement)
	}
	g := b.group(t, replacement)
	if g == nil {
		t.Fatalf("the replacement group %s does not exist", replacement)
	}
	if len(g.TargetGroupARNs) != 0 || len(g.LoadBalancerNames) != 0 {
		t.Errorf("the replacement has target groups %v and load balancers %v; CodeDeploy copies neither", g.TargetGroupARNs, g.LoadBalancerNames)
	}
	if aws.ToInt32(g.MinSize) != 2 || aws.ToInt32(g.MaxSize) != 6 || aws.ToInt32(g.DesiredCapacity) != 3 || aws.ToString(g.HealthCheckType) != "ELB" ||
		g.LaunchTemplate == nil || aws.ToString(g.LaunchTemplate.LaunchTemplateName) != "shop-web" || len(g.Tags) != 1 || aws.ToString(g.Tags[0].ResourceId) != replacement {
		t.Errorf("the replacement does not copy the original's configuration: %+v", g)
	}
	orig := b.group(t, "shop-web")
	if orig == nil || len(orig.TargetGroupARNs) != 1 || orig.TargetGroupARNs[0] != b.tg || len(orig.LoadBalancerNames) != 1 {
		t.Fatalf("the original changed: %+v", orig)
	}

	// DeploymentStart and DeploymentReady reached the subscribed function.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out, err := e.logs.FilterLogEvents(c, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/aws/lambda/listener"), FilterPattern: aws.String(`"REPORT RequestId"`)})
		if err == nil && len(out.Events) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the function was not invoked twice through SNS (%v)", err)
		}
	}

	// Continuing reroutes: the deployment group now deploys to the replacement; the original,
	// terminated with no wait, is gone.
	if _, err := b.cd.ContinueDeployment(c, &codedeploy.ContinueDeploymentInput{DeploymentId: aws.String(id), DeploymentWaitType: cdtypes.DeploymentWaitTypeReadyWait}); err != nil {
		t.Fatalf("ContinueDeployment: %v", err)
	}
	b.waitStatus(t, id, cdtypes.DeploymentStatusSucceeded)
	dg, err := b.cd.GetDeploymentGroup(c, &codedeploy.GetDeploymentGroupInput{ApplicationName: aws.String(b.app), DeploymentGroupName: aws.String(b.dg)})
	if err != nil {
		t.Fatal(err)
	}
	if asgs := dg.DeploymentGroupInfo.AutoScalingGroups; len(asgs) != 1 || aws.ToString(asgs[0].Name) != replacement {
		t.Errorf("deployment group's Auto Scaling groups = %+v, want the replacement", asgs)
	}
	if dg.DeploymentGroupInfo.LastSuccessfulDeployment == nil || aws.ToString(dg.DeploymentGroupInfo.LastSuccessfulDeployment.DeploymentId) != id {
		t.Errorf("lastSuccessfulDeployment = %+v", dg.DeploymentGroupInfo.LastSuccessfulDeployment)
	}
	for deadline := time.Now().Add(30 * time.Second); b.group(t, "shop-web") != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the original group was not terminated")
		}
	}
	list, err := b.cd.ListDeployments(c, &codedeploy.ListDeploymentsInput{ApplicationName: aws.String(b.app), DeploymentGroupName: aws.String(b.dg)})
	if err != nil || len(list.Deployments) != 1 || list.Deployments[0] != id {
		t.Errorf("ListDeployments = %v, %v", list, err)
	}
}

func TestBlueGreenServicesAnswerAWSErrors(t *testing.T) {
	e := start(t, fast)
	c := ctx(t)
	b := newBlueGreen(t, e, cdtypes.DeploymentReadyActionContinueDeployment, cdtypes.InstanceActionKeepAlive)

	_, err := b.cd.GetDeployment(c, &codedeploy.GetDeploymentInput{DeploymentId: aws.String("d-AAAAAAAAA")})
	wantAPIError[*cdtypes.DeploymentDoesNotExistException](t, err, 400)
	_, err = b.cd.GetDeployment(c, &codedeploy.GetDeploymentInput{DeploymentId: aws.String("nope")})
	wantAPIError[*cdtypes.InvalidDeploymentIdException](t, err, 400)
	_, err = b.cd.GetDeploymentGroup(c, &codedeploy.GetDeploymentGroupInput{ApplicationName: aws.String(b.app), DeploymentGroupName: aws.String("other")})
	wantAPIError[*cdtypes.DeploymentGroupDoesNotExistException](t, err, 400)
	_, err = b.cd.CreateApplication(c, &codedeploy.CreateApplicationInput{ApplicationName: aws.String(b.app)})
	wantAPIError[*cdtypes.ApplicationAlreadyExistsException](t, err, 400)
	_, err = b.cd.CreateDeployment(c, &codedeploy.CreateDeploymentInput{ApplicationName: aws.String("ghost"), DeploymentGroupName: aws.String(b.dg),
		Revision: &cdtypes.RevisionLocation{RevisionType: cdtypes.RevisionLocationTypeS3}})
	wantAPIError[*cdtypes.ApplicationDoesNotExistException](t, err, 400)
	_, err = b.cd.CreateDeploymentGroup(c, &codedeploy.CreateDeploymentGroupInput{ApplicationName: aws.String(b.app), DeploymentGroupName: aws.String("x"),
		ServiceRoleArn: aws.String("arn:aws:iam::000000000000:role/r"), AutoScalingGroups: []string{"missing"}})
	wantAPIError[*cdtypes.InvalidAutoScalingGroupException](t, err, 400)

	id := b.deploy(t)
	_, err = b.cd.ContinueDeployment(c, &codedeploy.ContinueDeploymentInput{DeploymentId: aws.String(id)})
	wantAPIError[*cdtypes.DeploymentIsNotInReadyStateException](t, err, 400) // it never waits in Ready
	b.waitStatus(t, id, cdtypes.DeploymentStatusSucceeded)
	if b.group(t, "shop-web") == nil {
		t.Error("KEEP_ALIVE deleted the original group")
	}

	_, err = b.as.AttachLoadBalancerTargetGroups(c, &autoscaling.AttachLoadBalancerTargetGroupsInput{AutoScalingGroupName: aws.String("ghost"), TargetGroupARNs: []string{b.tg}})
	if code := errorCode(err); code != "ValidationError" {
		t.Errorf("attach to a missing group: %v, want ValidationError", err)
	}
	_, err = b.as.AttachLoadBalancerTargetGroups(c, &autoscaling.AttachLoadBalancerTargetGroupsInput{AutoScalingGroupName: aws.String("shop-web"),
		TargetGroupARNs: []string{"arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/ghost/0123456789abcdef"}})
	if code := errorCode(err); code != "ValidationError" {
		t.Errorf("attach a missing target group: %v, want ValidationError", err)
	}
	_, err = b.as.CreateAutoScalingGroup(c, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String("shop-web"),
		LaunchConfigurationName: aws.String("lc"), MinSize: aws.Int32(0), MaxSize: aws.Int32(1)})
	wantAPIError[*astypes.AlreadyExistsFault](t, err, 400)
	_, err = b.as.DeleteAutoScalingGroup(c, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String("shop-web")})
	wantAPIError[*astypes.ResourceInUseFault](t, err, 400)
	if _, err = b.as.DeleteAutoScalingGroup(c, &autoscaling.DeleteAutoScalingGroupInput{AutoScalingGroupName: aws.String("shop-web"), ForceDelete: aws.Bool(true)}); err != nil {
		t.Errorf("ForceDelete: %v", err)
	}

	_, err = b.elb.DescribeTargetGroups(c, &elb.DescribeTargetGroupsInput{Names: []string{"ghost"}})
	wantAPIError[*elbtypes.TargetGroupNotFoundException](t, err, 400)
	again, err := b.elb.CreateTargetGroup(c, &elb.CreateTargetGroupInput{Name: aws.String("shop-web"), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(8080), VpcId: aws.String("vpc-0abc")})
	if err != nil || aws.ToString(again.TargetGroups[0].TargetGroupArn) != b.tg {
		t.Errorf("CreateTargetGroup with the same settings: %v, %v; want the same group", again, err)
	}
	_, err = b.elb.CreateTargetGroup(c, &elb.CreateTargetGroupInput{Name: aws.String("shop-web"), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(9090), VpcId: aws.String("vpc-0abc")})
	wantAPIError[*elbtypes.DuplicateTargetGroupNameException](t, err, 400)

	_, err = b.sns.Publish(c, &sns.PublishInput{TopicArn: aws.String(b.topic + "-ghost"), Message: aws.String("hi")})
	wantAPIError[*snstypes.NotFoundException](t, err, 404)
	_, err = b.sns.Publish(c, &sns.PublishInput{TopicArn: aws.String(b.topic), Message: aws.String("")})
	wantAPIError[*snstypes.InvalidParameterException](t, err, 400)
}

func TestBlueGreenWithAWSCLI(t *testing.T) {
	e := start(t, fast)
	cl := newCLI(t, e.srv)
	b := newBlueGreen(t, e, cdtypes.DeploymentReadyActionStopDeployment, cdtypes.InstanceActionKeepAlive)
	id := b.deploy(t)
	b.waitStatus(t, id, cdtypes.DeploymentStatusReady)

	dep := cl.ok("deploy", "get-deployment", "--deployment-id", id)["deploymentInfo"].(map[string]any)
	if dep["status"] != "Ready" || dep["deploymentGroupName"] != "shop-prod" {
		t.Errorf("aws deploy get-deployment: %v", dep)
	}
	groups := cl.ok("autoscaling", "describe-auto-scaling-groups", "--auto-scaling-group-names", "shop-web", "CodeDeploy_shop-prod_"+id)["AutoScalingGroups"].([]any)
	if len(groups) != 2 {
		t.Fatalf("aws autoscaling describe-auto-scaling-groups: %v", groups)
	}
	cl.ok("autoscaling", "attach-load-balancer-target-groups", "--auto-scaling-group-name", "CodeDeploy_shop-prod_"+id, "--target-group-arns", b.tg)
	if g := b.group(t, "CodeDeploy_shop-prod_"+id); len(g.TargetGroupARNs) != 1 {
		t.Errorf("after attach-load-balancer-target-groups: %v", g.TargetGroupARNs)
	}
	tgs := cl.ok("elbv2", "describe-target-groups", "--names", "shop-web")["TargetGroups"].([]any)
	if len(tgs) != 1 || tgs[0].(map[string]any)["TargetGroupArn"] != b.tg {
		t.Errorf("aws elbv2 describe-target-groups: %v", tgs)
	}
	if out := cl.ok("sns", "publish", "--topic-arn", b.topic, "--message", "hello"); out["MessageId"] == "" {
		t.Errorf("aws sns publish: %v", out)
	}
	_, stderr, code := cl.run("deploy", "get-deployment", "--deployment-id", "d-AAAAAAAAA")
	if code == 0 || !strings.Contains(stderr, "DeploymentDoesNotExistException") {
		t.Errorf("get-deployment of an unknown ID: exit %d\n%s", code, stderr)
	}
	_, stderr, code = cl.run("autoscaling", "delete-auto-scaling-group", "--auto-scaling-group-name", "ghost")
	if code == 0 || !strings.Contains(stderr, "ValidationError") {
		t.Errorf("delete-auto-scaling-group of an unknown group: exit %d\n%s", code, stderr)
	}
}
