package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	cdtypes "github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/smithy-go"

	"github.com/aviary-deploy/aviary/keeper"
)

// fakeCodeDeploy answers every GetDeployment with err.
type fakeCodeDeploy struct{ err error }

func (f fakeCodeDeploy) GetDeployment(context.Context, *codedeploy.GetDeploymentInput, ...func(*codedeploy.Options)) (*codedeploy.GetDeploymentOutput, error) {
	return nil, f.err
}

func (f fakeCodeDeploy) GetDeploymentGroup(context.Context, *codedeploy.GetDeploymentGroupInput, ...func(*codedeploy.Options)) (*codedeploy.GetDeploymentGroupOutput, error) {
	return nil, f.err
}

func (f fakeCodeDeploy) ListDeployments(context.Context, *codedeploy.ListDeploymentsInput, ...func(*codedeploy.Options)) (*codedeploy.ListDeploymentsOutput, error) {
	return nil, f.err
}

const notification = `{"Records":[{"EventSource":"aws:sns","Sns":{"Message":"{\"deploymentId\":\"d-ABCDEFGHI\",\"status\":\"Ready\"}"}}]}`

// The function fails only where Lambda's retry can help.
func TestHandlerFailsOnlyWhenARetryCanHelp(t *testing.T) {
	for _, tc := range []struct {
		name, payload string
		err           error
		fails         bool
		logged        string
	}{
		{"malformed event", `{"hello":1}`, nil, false, "cannot read"},
		{"malformed message", `{"Records":[{"EventSource":"aws:sns","Sns":{"Message":"{oops"}}]}`, nil, false, "cannot read"},
		{"unknown deployment", notification, &cdtypes.DeploymentDoesNotExistException{Message: aws.String("gone")}, false, "unknown deployment"},
		{"access denied", notification, &smithy.GenericAPIError{Code: "AccessDeniedException"}, false, "retrying would not help"},
		{"throttled", notification, &smithy.GenericAPIError{Code: "ThrottlingException"}, true, "Lambda will retry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&logs, nil))
			h := handler(&keeper.Keeper{CodeDeploy: fakeCodeDeploy{tc.err}, Log: log}, log)
			err := h(context.Background(), []byte(tc.payload))
			if (err != nil) != tc.fails {
				t.Errorf("handler error = %v, want failure %v", err, tc.fails)
			}
			if !strings.Contains(logs.String(), tc.logged) {
				t.Errorf("the log lacks %q:\n%s", tc.logged, logs.String())
			}
		})
	}
}
