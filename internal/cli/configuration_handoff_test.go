package cli

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/aviary-deploy/aviary/release"
)

type envController struct {
	fakeInvoker
	env   map[string]string
	err   error
	reads int
}

func (f *envController) GetFunction(context.Context, *lambda.GetFunctionInput, ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error) {
	f.reads++
	if f.err != nil {
		return nil, f.err
	}
	return &lambda.GetFunctionOutput{Configuration: &lambdatypes.FunctionConfiguration{Environment: &lambdatypes.EnvironmentResponse{Variables: f.env}}}, nil
}

// TestDetachChecksTheControllerEnvironment: a release whose configuration reads ${VAR} is handed
// to the controller only if the controller's environment has every such variable (Lambda's own
// are always there); otherwise it is bad input naming the variables and fields, before anything
// is recorded.
func TestDetachChecksTheControllerEnvironment(t *testing.T) {
	configured := func(env map[string]string) release.Function {
		return release.Function{Name: "api", Configuration: &release.Configuration{Template: release.Settings{Environment: env}}}
	}
	fns := []release.Function{
		configured(map[string]string{"TOKEN": "${SHOP_API_TOKEN}", "REGION": "${AWS_REGION}", "DB": "{{ssm:/shop/db}}", "PLAIN": "x"}),
		{Name: "worker"},
	}
	ctl := &envController{env: map[string]string{"OTHER": "1"}}
	err := checkControllerEnv(context.Background(), ctl, "aviary-controller", fns)
	var bad usageError
	if !errors.As(err, &bad) || !strings.Contains(err.Error(), "${SHOP_API_TOKEN} (functions.api.configuration.environment.TOKEN)") ||
		strings.Contains(err.Error(), "AWS_REGION") || strings.Contains(err.Error(), "/shop/db") {
		t.Fatalf("a controller without the variable: %v", err)
	}
	ctl.env["SHOP_API_TOKEN"] = "t"
	if err := checkControllerEnv(context.Background(), ctl, "aviary-controller", fns); err != nil {
		t.Errorf("a controller with the variable: %v", err)
	}
	ctl.err = errors.New("AccessDeniedException")
	if err := checkControllerEnv(context.Background(), ctl, "aviary-controller", fns); err == nil || errors.As(err, &bad) {
		t.Errorf("a controller that cannot be read: %v, want a plain error (a warning)", err)
	}
	ctl.reads = 0
	if err := checkControllerEnv(context.Background(), ctl, "aviary-controller", []release.Function{configured(map[string]string{"A": "{{ssm:/a}}"})}); err != nil || ctl.reads != 0 {
		t.Errorf("no ${VAR}: %v after %d reads, want nil and none", err, ctl.reads)
	}
}
