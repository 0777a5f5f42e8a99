// Package storeurl opens a store from its URL, sqlite://PATH or dynamodb://TABLE, for every
// program that keeps releases: the CLI, `aviary serve` and the gate's Lambda.
package storeurl

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/store"
	"github.com/aviary-deploy/aviary/store/dynamo"
	"github.com/aviary-deploy/aviary/store/sqlite"
)

// BadURLError says a store URL is not one, or lacks what it needs: nothing was opened. Its
// message starts with the URL, quoted.
type BadURLError struct{ Msg string }

func (e *BadURLError) Error() string { return e.Msg }

// Open opens the store url names. appID marks its AWS requests' User-Agent.
func Open(ctx context.Context, url, appID string) (store.Store, error) {
	switch {
	case strings.HasPrefix(url, "sqlite://"):
		path := strings.TrimPrefix(url, "sqlite://")
		if path == "" {
			return nil, &BadURLError{fmt.Sprintf("%q names no file: use sqlite://PATH", url)}
		}
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("open the store: %w", err)
		}
		return st, nil
	case strings.HasPrefix(url, "dynamodb://"):
		db, table, err := Dynamo(ctx, url, appID)
		if err != nil {
			return nil, err
		}
		return dynamo.Open(db, table), nil
	}
	return nil, &BadURLError{fmt.Sprintf("%q is not a store URL: use sqlite://PATH or dynamodb://TABLE", url)}
}

// Dynamo builds a DynamoDB client for a dynamodb://TABLE URL from the standard chain
// (AWS_ENDPOINT_URL_DYNAMODB points it elsewhere, such as at dynalite, while AWS_ENDPOINT_URL
// points the rest at a sandbox), and returns it with the table's name.
func Dynamo(ctx context.Context, url, appID string) (*dynamodb.Client, string, error) {
	table := strings.TrimPrefix(url, "dynamodb://")
	if len(table) < 3 || len(table) > 255 || strings.ContainsAny(table, "/?#") {
		return nil, "", &BadURLError{fmt.Sprintf("%q: a DynamoDB table name is 3–255 letters, digits, _ - and .", url)}
	}
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{AppID: appID})
	if err != nil {
		return nil, "", err
	}
	if cfg.Region == "" {
		return nil, "", &BadURLError{fmt.Sprintf("%q: no AWS region for the DynamoDB store: set AWS_REGION", url)}
	}
	return dynamodb.NewFromConfig(cfg), table, nil
}

// IsBadURL reports whether err says the URL (or what it needs) is wrong, rather than the store
// failing to answer.
func IsBadURL(err error) bool {
	var b *BadURLError
	return errors.As(err, &b)
}
