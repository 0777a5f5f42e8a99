package iampolicy_test

import (
	"testing"

	"github.com/aviary-deploy/aviary/iampolicy"
)

func TestRecoverPolicyReadsTheStackAndRestoresOnlyToItsBuckets(t *testing.T) {
	p := iampolicy.Recover(iampolicy.RecoverInput{Region: "eu-west-1", Account: "123456789012", Stack: "degap", Buckets: []string{"degap-deploy"}})
	cfn := "arn:aws:cloudformation:eu-west-1:123456789012:stack/"
	fn := "arn:aws:lambda:eu-west-1:123456789012:function:"
	for _, tc := range []struct {
		action, resource string
		want             bool
	}{
		{"cloudformation:DescribeStacks", cfn + "degap/0a1b", true},
		{"cloudformation:DescribeStackEvents", cfn + "degap-WebPushStack-X1/0a1b", true},
		{"cloudformation:GetTemplate", cfn + "degap-A-X1/0a1b", true},
		{"cloudformation:DescribeStackResources", cfn + "other/0a1b", false},
		{"cloudformation:ContinueUpdateRollback", cfn + "degap/0a1b", true},
		{"cloudformation:ContinueUpdateRollback", cfn + "degap-A-X1/0a1b", false},
		{"cloudformation:UpdateStack", cfn + "degap/0a1b", false},
		{"cloudformation:DeleteStack", cfn + "degap/0a1b", false},
		{"cloudtrail:LookupEvents", "*", true},
		{"s3:ListBucketVersions", "arn:aws:s3:::degap-deploy", true},
		{"s3:GetObjectVersion", "arn:aws:s3:::degap-deploy/functions/ab.zip", true},
		{"s3:PutObject", "arn:aws:s3:::degap-deploy/functions/ab.zip", true},
		{"s3:PutObject", "arn:aws:s3:::other/functions/ab.zip", false},
		{"s3:DeleteObject", "arn:aws:s3:::degap-deploy/functions/ab.zip", false},
		{"lambda:GetFunction", fn + "degap-A-X1-Fn-Y2:1", true},
		{"lambda:ListVersionsByFunction", fn + "degap-A-X1-Fn-Y2", true},
		{"lambda:GetFunction", fn + "other", false},
		{"lambda:DeleteFunction", fn + "degap-A-X1-Fn-Y2", false},
		{"lambda:CreateFunction", fn + "degap-A-X1-Fn-Y2", false},
	} {
		if got := p.Allows(tc.action, tc.resource); got != tc.want {
			t.Errorf("Allows(%s, %s) = %v, want %v", tc.action, tc.resource, got, tc.want)
		}
	}
	if every := iampolicy.Recover(iampolicy.RecoverInput{Region: "eu-west-1", Account: "123456789012"}); !every.Allows("s3:PutObject", "arn:aws:s3:::any/k.zip") ||
		!every.Allows("cloudformation:ContinueUpdateRollback", cfn+"any/0a1b") {
		t.Errorf("with no stack or bucket, the policy covers every stack and bucket: %+v", every)
	}
}
