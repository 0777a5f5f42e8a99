// Command aviary-keeper is package keeper as an AWS Lambda function: subscribed to a CodeDeploy
// deployment group's SNS trigger (or to the EventBridge rule of "CodeDeploy Deployment
// State-change Notification" events), it attaches the original Auto Scaling group's target groups
// and Classic Load Balancers to the replacement group a blue/green deployment with
// COPY_AUTO_SCALING_GROUP creates — which CodeDeploy copies without them.
//
// # Build and deploy
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -o bootstrap ./cmd/aviary-keeper
//	zip aviary-keeper.zip bootstrap
//	aws lambda create-function --function-name aviary-keeper --runtime provided.al2023 \
//	    --architectures arm64 --handler bootstrap --zip-file fileb://aviary-keeper.zip \
//	    --timeout 30 --role arn:aws:iam::ACCOUNT:role/aviary-keeper
//	aws sns subscribe --topic-arn arn:aws:sns:REGION:ACCOUNT:deploys --protocol lambda \
//	    --notification-endpoint arn:aws:lambda:REGION:ACCOUNT:function:aviary-keeper
//	aws lambda put-function-concurrency --function-name aviary-keeper --reserved-concurrent-executions 1
//	aws lambda add-permission --function-name aviary-keeper --statement-id sns \
//	    --action lambda:InvokeFunction --principal sns.amazonaws.com \
//	    --source-arn arn:aws:sns:REGION:ACCOUNT:deploys
//
// and give the deployment group a trigger on that topic with the events DeploymentReady (the
// replacement group exists and traffic is not yet rerouted) and DeploymentSuccess (a second
// chance, should the first notification be lost); more events do no harm. The role's policy is
// what `aviary iam-policy --keeper` prints, plus AWSLambdaBasicExecutionRole.
//
// # Behaviour
//
// Every notification is handled alike: the keeper reads the deployment and attaches what the
// replacement lacks, so repeated or early notifications write nothing (a notification that comes
// before the replacement exists is logged as such). A deployment that is not a blue/green copy is
// left alone, and the log says why. Each decision is one JSON log line (log/slog).
//
// A malformed event or message, or an unknown deployment, is logged and the invocation succeeds:
// retrying cannot help, and an error would only make Lambda retry an asynchronous invocation
// twice. The function fails — so that Lambda retries it — only when AWS was unreachable,
// throttled or failing.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/keeper"
)

// appID marks the keeper's AWS requests in their User-Agent (and so in CloudTrail).
const appID = "aviary-keeper"

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg, err := awsconfig.Load(context.Background(), awsconfig.Options{AppID: appID})
	if err != nil {
		log.Error("keeper: load the AWS configuration", "err", err)
		os.Exit(1)
	}
	k := &keeper.Keeper{CodeDeploy: codedeploy.NewFromConfig(cfg), AutoScaling: autoscaling.NewFromConfig(cfg),
		TargetGroups: elb.NewFromConfig(cfg), Log: log}
	lambda.Start(handler(k, log))
}

// handler handles one event: every deployment notification in it, each on its own.
func handler(k *keeper.Keeper, log *slog.Logger) func(context.Context, json.RawMessage) error {
	return func(ctx context.Context, payload json.RawMessage) error {
		ns, bad := keeper.Parse(payload)
		for _, err := range bad {
			log.Warn("keeper: ignored a notification it cannot read", "err", err, "event", truncate(string(payload), 500))
		}
		var retry []error
		for _, n := range ns {
			log.Info("keeper: notification", "deploymentId", n.DeploymentID, "event", n.Event)
			_, err := k.Keep(ctx, n.DeploymentID, false)
			switch {
			case err == nil:
			case errors.Is(err, keeper.ErrUnknownDeployment):
				log.Warn("keeper: unknown deployment; nothing done", "deploymentId", n.DeploymentID, "err", err)
			case keeper.Retryable(err):
				log.Error("keeper: failed; Lambda will retry", "deploymentId", n.DeploymentID, "err", err)
				retry = append(retry, err)
			default:
				log.Error("keeper: failed; retrying would not help", "deploymentId", n.DeploymentID, "err", err)
			}
		}
		if len(retry) > 0 {
			return fmt.Errorf("aviary-keeper: %w", errors.Join(retry...))
		}
		return nil
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
