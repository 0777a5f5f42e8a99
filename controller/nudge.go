package controller

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// Invoker is what a nudge needs of Lambda.
type Invoker interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, opts ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

var _ Invoker = (*lambda.Client)(nil)

// Nudge asks the controller's function to tick at once, asynchronously (InvocationType Event:
// Lambda queues the event and answers 202), with ev as its input: whoever records a decision or
// a request calls it so that the release need not wait for the next scheduled tick. It needs
// lambda:InvokeFunction on the function. A nudge that fails costs only that wait: callers report
// it and go on.
func Nudge(ctx context.Context, lc Invoker, function string, ev Event) error {
	payload, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	if _, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(function), InvocationType: lambdatypes.InvocationTypeEvent, Payload: payload}); err != nil {
		return fmt.Errorf("nudge the controller %s: %w", function, err)
	}
	return nil
}
