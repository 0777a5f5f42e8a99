package iampolicy_test

import (
	"testing"

	"github.com/aviary-deploy/aviary/iampolicy"
)

func TestPolicyNamesOnlyWhatItCovers(t *testing.T) {
	p := iampolicy.Build(iampolicy.Input{Region: "eu-west-1", Account: "123456789012", Functions: []string{"shop-api-prod"},
		Bucket: "shop-artifacts", Prefix: "/releases/shop/", Table: "aviary", ReadFunctions: []string{"shop-api-prod", "shop-api-staging"}})
	for _, tc := range []struct {
		action, resource string
		want             bool
	}{
		{"lambda:UpdateFunctionCode", "arn:aws:lambda:eu-west-1:123456789012:function:shop-api-prod", true},
		{"lambda:UpdateAlias", "arn:aws:lambda:eu-west-1:123456789012:function:shop-api-prod:live", true},
		{"lambda:UpdateAlias", "arn:aws:lambda:eu-west-1:123456789012:function:shop-api-staging:live", false},
		{"lambda:DeleteFunction", "arn:aws:lambda:eu-west-1:123456789012:function:shop-api-prod", false},
		{"lambda:UpdateAlias", "arn:aws:lambda:us-east-1:123456789012:function:shop-api-prod:live", false},
		{"s3:PutObject", "arn:aws:s3:::shop-artifacts/releases/shop/ab12.zip", true},
		{"s3:PutObject", "arn:aws:s3:::shop-artifacts/other/ab12.zip", false},
		{"s3:DeleteObject", "arn:aws:s3:::shop-artifacts/releases/shop/ab12.zip", true}, // gc
		{"s3:DeleteObject", "arn:aws:s3:::shop-artifacts/other/ab12.zip", false},
		{"s3:DeleteObjectVersion", "arn:aws:s3:::shop-artifacts/releases/shop/ab12.zip", false}, // gc never deletes versions
		{"s3:GetLifecycleConfiguration", "arn:aws:s3:::shop-artifacts", true},
		{"s3:GetBucketVersioning", "arn:aws:s3:::shop-artifacts", true},
		{"s3:PutLifecycleConfiguration", "arn:aws:s3:::shop-artifacts", false},
		{"lambda:GetAccountSettings", "*", true},
		{"lambda:ListVersionsByFunction", "arn:aws:lambda:eu-west-1:123456789012:function:shop-api-prod", true},
		{"lambda:ListVersionsByFunction", "arn:aws:lambda:eu-west-1:123456789012:function:shop-api-staging", true}, // gc marks every environment
		{"lambda:ListVersionsByFunction", "arn:aws:lambda:eu-west-1:123456789012:function:other", false},
		{"s3:ListBucket", "arn:aws:s3:::shop-artifacts", true},
		{"dynamodb:PutItem", "arn:aws:dynamodb:eu-west-1:123456789012:table/aviary", true},
		{"dynamodb:Query", "arn:aws:dynamodb:eu-west-1:123456789012:table/aviary/index/by-environment", true},
		{"dynamodb:DeleteTable", "arn:aws:dynamodb:eu-west-1:123456789012:table/aviary", false},
		{"dynamodb:PutItem", "arn:aws:dynamodb:eu-west-1:123456789012:table/other", false},
		// prune: a version of these functions, never the function, never another's
		{"lambda:DeleteFunction", "arn:aws:lambda:eu-west-1:123456789012:function:shop-api-prod:7", true},
		{"lambda:DeleteFunction", "arn:aws:lambda:eu-west-1:123456789012:function:shop-other-prod:7", false},
		{"lambda:ListVersionsByFunction", "arn:aws:lambda:eu-west-1:123456789012:function:shop-api-prod", true},
		{"lambda:ListAliases", "arn:aws:lambda:eu-west-1:123456789012:function:shop-api-prod", true},
		{"lambda:ListProvisionedConcurrencyConfigs", "arn:aws:lambda:eu-west-1:123456789012:function:shop-api-prod", true},
		{"lambda:ListEventSourceMappings", "*", true},
		{"cloudfront:ListDistributions", "*", true},
		{"cloudfront:GetDistributionConfig", "arn:aws:cloudfront::123456789012:distribution/E2QWRUHAPOMQZL", true},
		{"cloudfront:UpdateDistribution", "arn:aws:cloudfront::123456789012:distribution/E2QWRUHAPOMQZL", false},
	} {
		if got := p.Allows(tc.action, tc.resource); got != tc.want {
			t.Errorf("Allows(%s, %s) = %v, want %v", tc.action, tc.resource, got, tc.want)
		}
	}
	if got := iampolicy.Action("s3", "HeadObject"); got != "s3:GetObject" {
		t.Errorf("HeadObject needs %s", got)
	}
	if got := iampolicy.Action("s3", "GetBucketLifecycleConfiguration"); got != "s3:GetLifecycleConfiguration" {
		t.Errorf("GetBucketLifecycleConfiguration needs %s", got)
	}
	if got := iampolicy.Action("s3", "HeadBucket"); got != "s3:ListBucket" {
		t.Errorf("HeadBucket needs %s", got)
	}
	noTable := iampolicy.Build(iampolicy.Input{Region: "eu-west-1", Account: "123456789012", Functions: []string{"f"}, Bucket: "b"})
	if noTable.Allows("dynamodb:PutItem", "arn:aws:dynamodb:eu-west-1:123456789012:table/aviary") || len(noTable.Statement) != 12 {
		t.Errorf("a SQLite store needs no DynamoDB rights: %+v", noTable)
	}
}

func TestPolicyForChecks(t *testing.T) {
	p := iampolicy.Build(iampolicy.Input{Region: "eu-west-1", Account: "123456789012", Functions: []string{"shop-api-prod"}, Bucket: "b",
		Checks: &iampolicy.Checks{Metrics: true, LogGroups: []string{"/aws/lambda/shop-api-prod"}, Alarms: []string{"shop-5xx"}, Smoke: true, Hooks: []string{"shop-check"}}})
	fn := "arn:aws:lambda:eu-west-1:123456789012:function:"
	for _, tc := range []struct {
		action, resource string
		want             bool
	}{
		{"lambda:InvokeFunction", fn + "shop-api-prod:7", true},    // a smoke invocation of a new version
		{"lambda:InvokeFunction", fn + "shop-api-prod", false},     // not $LATEST
		{"lambda:InvokeFunction", fn + "shop-check", true},         // the hook
		{"lambda:InvokeFunction", fn + "shop-other-prod:7", false}, // nothing else
		{"cloudwatch:GetMetricData", "*", true},                    // no resource-level permissions exist
		{"cloudwatch:DescribeAlarms", "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:shop-5xx", true},
		{"cloudwatch:DescribeAlarms", "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:other", false},
		{"cloudwatch:SetAlarmState", "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:shop-5xx", false},
		{"logs:FilterLogEvents", "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/shop-api-prod:*", true},
		{"logs:FilterLogEvents", "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/other:*", false},
	} {
		if got := p.Allows(tc.action, tc.resource); got != tc.want {
			t.Errorf("%s on %s: %v, want %v", tc.action, tc.resource, got, tc.want)
		}
	}
	if iampolicy.Action("lambda", "Invoke") != "lambda:InvokeFunction" || iampolicy.Action("logs", "FilterLogEvents") != "logs:FilterLogEvents" {
		t.Error("operations are not mapped to their IAM actions")
	}
}

// With metrics off the checks read no metrics, but plan reads the aliases' traffic: the right
// to GetMetricData stays; without checks plan reads nothing, and it goes.
func TestPlanReadsTrafficWithMetricsOff(t *testing.T) {
	in := iampolicy.Input{Region: "eu-west-1", Account: "123456789012", Functions: []string{"f"}, Bucket: "b", Checks: &iampolicy.Checks{Metrics: false}}
	if !iampolicy.Build(in).Allows("cloudwatch:GetMetricData", "*") {
		t.Error("checks with metrics: off lost GetMetricData, which plan needs")
	}
	in.Checks = nil
	if iampolicy.Build(in).Allows("cloudwatch:GetMetricData", "*") {
		t.Error("no checks, yet GetMetricData")
	}
}

// TestControllerTrigger: an environment with a controller lets CI invoke that function alone
// (deploy --detach's tick); one without grants no such right.
func TestControllerTrigger(t *testing.T) {
	in := iampolicy.Input{Region: "eu-west-1", Account: "123456789012", Functions: []string{"shop-api-prod"}, Bucket: "b"}
	for _, s := range iampolicy.Build(in).Statement {
		if s.Sid == "TriggerTheController" {
			t.Fatalf("no controller, yet %+v", s)
		}
	}
	in.Controller = "aviary-controller"
	var got *iampolicy.Statement
	for _, s := range iampolicy.Build(in).Statement {
		if s.Sid == "TriggerTheController" {
			got = &s
		}
	}
	if got == nil || len(got.Action) != 2 || got.Action[0] != "lambda:GetFunction" || got.Action[1] != "lambda:InvokeFunction" ||
		len(got.Resource) != 1 || got.Resource[0] != "arn:aws:lambda:eu-west-1:123456789012:function:aviary-controller" {
		t.Fatalf("TriggerTheController = %+v", got)
	}
}
