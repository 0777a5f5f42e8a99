package iampolicy_test

import (
	"testing"

	"github.com/aviary-deploy/aviary/iampolicy"
)

// TestControllerPublishesImagesAndConfiguration: the controller drives the releases handed to
// it, so its policy has what publishing an image function (Lambda reads the image as the caller)
// and a configured function (UpdateFunctionConfiguration, the SSM parameters at publish) needs —
// and nothing of plan's or doctor's ECR reads.
func TestControllerPublishesImagesAndConfiguration(t *testing.T) {
	in := iampolicy.Input{Region: "eu-west-1", Account: "123456789012", Functions: []string{"shop-api-prod", "shop-img-prod"}, Bucket: "b",
		Repositories:  []string{"shop/img"},
		Configuration: &iampolicy.Configuration{Functions: []string{"shop-api-prod"}, Parameters: []string{"/shop/db/password"}}}
	p := iampolicy.Controller(iampolicy.ControllerInput{Input: in, Function: "aviary-controller"})
	const fn, repo = "arn:aws:lambda:eu-west-1:123456789012:function:", "arn:aws:ecr:eu-west-1:123456789012:repository/shop/img"
	for _, tc := range []struct {
		action, resource string
		want             bool
	}{
		{"lambda:UpdateFunctionConfiguration", fn + "shop-api-prod", true},
		{"lambda:UpdateFunctionConfiguration", fn + "shop-img-prod", false},
		{"ssm:GetParameter", "arn:aws:ssm:eu-west-1:123456789012:parameter/shop/db/password", true},
		{"ecr:BatchGetImage", repo, true},
		{"ecr:GetDownloadUrlForLayer", repo, true},
		{"ecr:DescribeImages", repo, false},
		{"ecr:GetLifecyclePolicy", repo, false},
	} {
		if got := p.Allows(tc.action, tc.resource); got != tc.want {
			t.Errorf("the controller's policy allows %s on %s: %v, want %v", tc.action, tc.resource, got, tc.want)
		}
	}
}
