// Command aviary-gate is Aviary's approval gate and dashboard (package web, the handler `aviary
// serve` runs) as an AWS Lambda function behind a function URL, so that a team can host the gate
// without a server. It is a custom-runtime bootstrap: package web/lambdaurl turns each
// function-URL event into an HTTP request for the handler and its response back.
//
// # Build and deploy
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -o bootstrap ./cmd/aviary-gate
//	zip aviary-gate.zip bootstrap
//	aws lambda create-function --function-name aviary-gate --runtime provided.al2023 \
//	    --architectures arm64 --handler bootstrap --zip-file fileb://aviary-gate.zip \
//	    --timeout 30 --memory-size 256 --role arn:aws:iam::ACCOUNT:role/aviary-gate \
//	    --environment 'Variables={AVIARY_STORE=dynamodb://aviary,AVIARY_LINK_SECRET_FILE=...}'
//	aws lambda create-function-url-config --function-name aviary-gate --auth-type NONE
//	aws lambda add-permission --function-name aviary-gate --statement-id url \
//	    --action lambda:InvokeFunctionUrl --principal '*' --function-url-auth-type NONE
//
// (GOARCH=amd64 with --architectures x86_64 works as well.) Where releases are deployed, set
// AVIARY_URL to the function URL, so that the links deploys print and send point at it, and
// AVIARY_LINK_SECRET to the same secret.
//
// Auth type NONE is fine for the gate itself: a decision needs a link signed with the link
// secret (and a CSRF token from its confirmation page), and the dashboard's buttons need the
// admin token. But with NONE anyone can read the dashboard; to keep it private, use auth type
// AWS_IAM and put an authenticating proxy in front (one that signs its requests to the function
// URL), and set AVIARY_USER_HEADER to the header in which it passes the signed-in user, and
// AVIARY_TRUSTED_PROXIES to the proxy's addresses as the function URL sees them: the header and
// X-Forwarded-For are then believed only from the proxy. Without AVIARY_TRUSTED_PROXIES, whoever
// sends that header would be believed (the gate logs a warning at start): never set
// AVIARY_USER_HEADER alone on a function URL anyone can reach.
//
// # Environment
//
//	AVIARY_STORE             required: dynamodb://TABLE (the team store; see `aviary store init`),
//	                         or sqlite://PATH (only for a file on an EFS mount, or for tests:
//	                         a function's filesystem is read-only but for /tmp, which is not kept)
//	AVIARY_LINK_SECRET       required (or AVIARY_LINK_SECRET_FILE, a file in the bundle or on an
//	                         EFS mount): the secret links are signed with, the same as the CLI's;
//	                         at least 16 random bytes
//	AVIARY_ADMIN_TOKEN       optional: turns on the dashboard's approve and rollback buttons for
//	                         whoever logs in with it; at least 12 characters, long and random
//	AVIARY_USER_HEADER       optional: the header an authenticating proxy names the user in
//	                         (such as X-Forwarded-User); see above
//	AVIARY_TRUSTED_PROXIES   optional: the addresses of the proxies in front of the function
//	                         URL (CIDR ranges or addresses, comma-separated), as the function
//	                         URL sees them; the user header and X-Forwarded-For are then
//	                         believed only from them
//	AVIARY_URL               optional: the address people use when a custom domain (such as a
//	                         CloudFront distribution) fronts the function URL, so that forms
//	                         posted from it are accepted as the gate's own
//	AVIARY_CONTROLLER_FUNCTION
//	                         optional: the controller's function (cmd/aviary-controller, `aviary
//	                         controller install`), name or ARN. After a decision or a rollback
//	                         request on a release the controller drives, the gate invokes it at
//	                         once (asynchronously, controller.Nudge) so that the release moves
//	                         without waiting for the next scheduled tick; a failed nudge is a
//	                         warning in the log
//
// DynamoDB is reached through the standard AWS configuration chain (the function's role; the
// region Lambda runs in; AWS_ENDPOINT_URL_DYNAMODB to point it elsewhere).
//
// # IAM
//
// Besides AWSLambdaBasicExecutionRole (for its logs), the role needs, on the table and its index
// (arn:aws:dynamodb:REGION:ACCOUNT:table/TABLE and .../TABLE/index/by-environment):
//
//	dynamodb:GetItem     read a release, an audit entry by key, whether a session was logged out
//	dynamodb:PutItem     write a decision (conditional on the release's revision), an audit
//	                     entry, a log out
//	dynamodb:UpdateItem  the audit trail's counter
//	dynamodb:Query       a release's audit trail; an environment's releases (the index)
//	dynamodb:Scan        the dashboard's list of all releases, /metrics
//
// With AVIARY_CONTROLLER_FUNCTION it also needs lambda:InvokeFunction on that function (the
// Terraform module and the CloudFormation template grant it when they install the controller).
// Otherwise it needs no Lambda permissions: the gate records decisions, and the process driving
// the release (CI's `aviary deploy`, or the controller at its next tick) acts on them.
//
// A configuration error (such as AVIARY_STORE missing) fails the function's initialisation with
// a message saying what to set: the function URL answers 502 and the message is in the Invoke
// error and the function's log.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/aviary-deploy/aviary/internal/lambdaboot"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/controller"
	"github.com/aviary-deploy/aviary/links"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/store"
	"github.com/aviary-deploy/aviary/web"
	"github.com/aviary-deploy/aviary/web/lambdaurl"
)

// appID marks the gate's AWS requests in their User-Agent (and so in CloudTrail).
const appID = "aviary-gate"

func main() {
	// Lambda gives a function's initialisation 10 seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	h, err := newHandler(ctx)
	cancel()
	if err != nil {
		initFailed(err)
	}
	lambdaurl.Start(h)
}

// newHandler builds the gate from the environment.
func newHandler(ctx context.Context) (http.Handler, error) {
	st, err := openStore(ctx, os.Getenv("AVIARY_STORE"))
	if err != nil {
		return nil, err
	}
	secret, err := links.SecretFromEnv()
	if err != nil {
		st.Close()
		return nil, err
	}
	if len(secret) == 0 {
		st.Close()
		return nil, errors.New("no link secret: set AVIARY_LINK_SECRET (or AVIARY_LINK_SECRET_FILE) to the secret the links are signed with")
	}
	signer, err := links.NewSigner(secret)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("AVIARY_LINK_SECRET: %w", err)
	}
	admin := os.Getenv("AVIARY_ADMIN_TOKEN")
	if admin != "" && len(admin) < 12 {
		st.Close()
		return nil, fmt.Errorf("AVIARY_ADMIN_TOKEN is %d characters; use at least 12 (anyone who guesses it can approve releases)", len(admin))
	}
	var proxies []netip.Prefix
	if v := os.Getenv("AVIARY_TRUSTED_PROXIES"); v != "" {
		if proxies, err = web.ParseProxies(strings.Split(v, ",")); err != nil {
			st.Close()
			return nil, fmt.Errorf("AVIARY_TRUSTED_PROXIES: %w", err)
		}
	}
	nudge, err := nudger(ctx, strings.TrimSpace(os.Getenv("AVIARY_CONTROLLER_FUNCTION")))
	if err != nil {
		st.Close()
		return nil, err
	}
	h, err := web.New(web.Config{
		Store:          st,
		Signer:         signer,
		AdminToken:     admin,
		UserHeader:     strings.TrimSpace(os.Getenv("AVIARY_USER_HEADER")),
		TrustedProxies: proxies,
		PublicURL:      os.Getenv("AVIARY_URL"),                       // a custom domain in front of the function URL
		Log:            slog.New(slog.NewJSONHandler(os.Stderr, nil)), // the function's log, one JSON object a line
		Nudge:          nudge,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	return h, nil
}

// nudger returns what asks the controller's function for a tick at once after a decision (nil
// without a function).
func nudger(ctx context.Context, function string) (func(context.Context, *release.Release, string) error, error) {
	if function == "" {
		return nil, nil
	}
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{AppID: appID})
	if err != nil {
		return nil, fmt.Errorf("AVIARY_CONTROLLER_FUNCTION: the AWS configuration: %w", err)
	}
	lc := lambda.NewFromConfig(cfg)
	return func(ctx context.Context, r *release.Release, reason string) error {
		return controller.Nudge(ctx, lc, function, controller.Event{Service: r.Service, Environment: r.Environment, Release: r.ID, Reason: reason})
	}, nil
}

// openStore opens the store AVIARY_STORE names, as the CLI does.
func openStore(ctx context.Context, url string) (store.Store, error) {
	return lambdaboot.OpenStore(ctx, url, appID, "dynamodb://TABLE (or sqlite://PATH)")
}

// initFailed reports err as the function's initialisation error and exits (see lambdaboot).
func initFailed(err error) { lambdaboot.InitFailed("aviary-gate", err) }
