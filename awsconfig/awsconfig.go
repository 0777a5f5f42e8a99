// Package awsconfig builds every AWS client configuration Aviary uses, in one place, from the
// standard chain (profiles, environment, AWS_ENDPOINT_URL). Endpoint overrides go through the
// SDK's BaseEndpoint, never the deprecated resolvers.
package awsconfig

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go/logging"
)

// Options override parts of the standard chain.
type Options struct {
	Region  string
	Profile string
	// Endpoint sends every client to one URL, such as a sandbox's.
	Endpoint string
	// MaxAttempts overrides the SDK retryer's attempts (default 3).
	MaxAttempts int
	// AppID is added to every request's User-Agent ("app/<id>").
	AppID string
}

// Load returns the configuration the standard chain gives, with o's overrides.
func Load(ctx context.Context, o Options) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	if o.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(o.Profile))
	}
	if o.Endpoint != "" {
		opts = append(opts, config.WithBaseEndpoint(o.Endpoint))
	}
	if o.MaxAttempts > 0 {
		opts = append(opts, config.WithRetryMaxAttempts(o.MaxAttempts))
	}
	if o.AppID != "" {
		opts = append(opts, config.WithAppID(o.AppID))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	cfg.Logger = sdkLogger{logging.NewStandardLogger(os.Stderr)}
	return cfg, nil
}

// sdkLogger is the SDK's standard logger on stderr, less one warning: that a response body could
// not be drained for connection reuse after it was read. The request succeeded; seen now and then
// on CloudWatch Logs reads, it says nothing a user can act on.
type sdkLogger struct{ logging.Logger }

func (l sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	if strings.HasPrefix(format, "failed to discard remaining HTTP response body") {
		return
	}
	l.Logger.Logf(c, format, v...)
}

// Sandbox returns a configuration for an Aviary sandbox at url: its endpoint, its region and
// placeholder credentials (the sandbox does not verify signatures).
func Sandbox(ctx context.Context, url, region string) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(region),
		config.WithBaseEndpoint(url),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("sandbox", "sandbox", "")),
	)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return cfg, nil
}
