package sandbox_test

import (
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// TestListTags: ListTags answers a function ARN with the tags CreateFunction set (none: an empty
// map), refuses a qualified ARN, and says a missing function is not found.
func TestListTags(t *testing.T) {
	e := start(t, fast)
	c := ctx(t)
	tagged := e.createFunction(t, "tagged", zips.good, func(in *lambda.CreateFunctionInput) { in.Tags = map[string]string{"team": "shop"} })
	plain := e.createFunction(t, "plain", zips.good)

	out, err := e.lambda.ListTags(c, &lambda.ListTagsInput{Resource: tagged.FunctionArn})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := out.Tags["team"], "shop"; got != want || len(out.Tags) != 1 {
		t.Fatalf("tags %v, want team=shop only", out.Tags)
	}
	out, err = e.lambda.ListTags(c, &lambda.ListTagsInput{Resource: plain.FunctionArn})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Tags) != 0 {
		t.Fatalf("tags of an untagged function: %v", out.Tags)
	}
	_, err = e.noRetry().ListTags(c, &lambda.ListTagsInput{Resource: aws.String(aws.ToString(tagged.FunctionArn) + ":live")})
	wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, http.StatusBadRequest)
	_, err = e.noRetry().ListTags(c, &lambda.ListTagsInput{Resource: aws.String("arn:aws:lambda:us-east-1:000000000000:function:missing")})
	wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, http.StatusNotFound)
}
