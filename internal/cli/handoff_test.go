package cli

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

type fakeInvoker struct {
	in  *lambda.InvokeInput
	err error
}

func (f *fakeInvoker) Invoke(_ context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	f.in = in
	return &lambda.InvokeOutput{StatusCode: 202}, f.err
}

// TestTriggerTick: the controller is invoked asynchronously (Event) with the payload its tick
// reads: {"environment", "release", "reason"}.
func TestTriggerTick(t *testing.T) {
	inv := &fakeInvoker{}
	if err := triggerTick(context.Background(), inv, "aviary-controller", tickRequest{Environment: "production", Release: "shop-production-1", Reason: tickDetach}); err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(inv.in.FunctionName), "aviary-controller"; got != want {
		t.Errorf("function %q, want %q", got, want)
	}
	if got, want := inv.in.InvocationType, lambdatypes.InvocationTypeEvent; got != want {
		t.Errorf("invocation type %q, want %q", got, want)
	}
	var payload map[string]string
	if err := json.Unmarshal(inv.in.Payload, &payload); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"environment": "production", "release": "shop-production-1", "reason": "detach"}
	if len(payload) != len(want) {
		t.Errorf("payload %v, want %v", payload, want)
	}
	for k, v := range want {
		if payload[k] != v {
			t.Errorf("payload[%q] = %q, want %q", k, payload[k], v)
		}
	}
	inv.err = errors.New("ResourceNotFoundException")
	if err := triggerTick(context.Background(), inv, "aviary-controller", tickRequest{}); err == nil {
		t.Error("a failed Invoke is not reported")
	}
}
