package inventory

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
)

// TestClassifyReplicated: the refusal AWS gives for a Lambda@Edge version whose replicas
// CloudFront has not removed yet — an InvalidParameterValueException carrying this message, as
// AWS documents and answers it — is deferred; the same type with another message is a failure,
// and the message under another type is not taken for it.
func TestClassifyReplicated(t *testing.T) {
	const aws = "Lambda was unable to delete arn:aws:lambda:us-east-1:123456789012:function:edge-fn:3 because it is a replicated function. Please see our documentation for Deleting Lambda@Edge Functions and Replicas."
	cases := []struct {
		name string
		err  error
		want Outcome
	}{
		{"nil", nil, Deleted},
		{"replicated", &lambdatypes.InvalidParameterValueException{Message: ptr(aws)}, Deferred},
		{"replicated, wrapped", fmt.Errorf("delete: %w", &lambdatypes.InvalidParameterValueException{Message: ptr(aws)}), Deferred},
		{"another bad parameter", &lambdatypes.InvalidParameterValueException{Message: ptr("$LATEST version cannot be deleted without deleting the function.")}, Failed},
		{"the message under another code", &smithy.GenericAPIError{Code: "ServiceException", Message: aws}, Failed},
		{"an alias moved onto it", &lambdatypes.ResourceConflictException{Message: ptr("Unable to delete version because the following aliases reference it: [live]")}, Conflict},
		{"already gone", &lambdatypes.ResourceNotFoundException{Message: ptr("Function not found")}, Gone},
		{"throttled after retries", &lambdatypes.TooManyRequestsException{Message: ptr("Rate exceeded")}, Failed},
		{"anything else", errors.New("connection reset"), Failed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Classify(c.err); got != c.want {
				t.Errorf("Classify(%v) = %s, want %s", c.err, got, c.want)
			}
		})
	}
}

func ptr(s string) *string { return &s }

type deleteFunc func(*lambda.DeleteFunctionInput) error

func (f deleteFunc) DeleteFunction(_ context.Context, in *lambda.DeleteFunctionInput, _ ...func(*lambda.Options)) (*lambda.DeleteFunctionOutput, error) {
	return &lambda.DeleteFunctionOutput{}, f(in)
}

// TestDeleteVersionOnlyEverDeletesAVersion: the call is qualified with the version, and nothing
// that is not a published version (the function, $LATEST, an alias) is ever asked for.
func TestDeleteVersionOnlyEverDeletesAVersion(t *testing.T) {
	var calls []string
	c := deleteFunc(func(in *lambda.DeleteFunctionInput) error {
		calls = append(calls, aws.ToString(in.FunctionName)+":"+aws.ToString(in.Qualifier))
		return nil
	})
	for _, v := range []string{"", "$LATEST", "live", "3"} {
		DeleteVersion(t.Context(), c, "fn", v)
	}
	if len(calls) != 1 || calls[0] != "fn:3" {
		t.Errorf("calls = %v, want [fn:3]", calls)
	}
}
