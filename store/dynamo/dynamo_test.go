package dynamo_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/internal/dynalite"
	"github.com/aviary-deploy/aviary/store"
	"github.com/aviary-deploy/aviary/store/dynamo"
	"github.com/aviary-deploy/aviary/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	dynalite.Stop()
	os.Exit(code)
}

var tables atomic.Int64

// client talks to dynalite through the standard chain, as Aviary does.
func client(t *testing.T) *dynamodb.Client {
	endpoint := dynalite.Endpoint(t)
	cfg, err := awsconfig.Load(context.Background(), awsconfig.Options{Region: "us-east-1", Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Credentials = credentials.NewStaticCredentialsProvider("dynalite", "dynalite", "")
	return dynamodb.NewFromConfig(cfg)
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db := client(t)
		table := fmt.Sprintf("aviary-test-%d", tables.Add(1))
		created, err := dynamo.Init(context.Background(), db, table)
		if err != nil || !created {
			t.Fatalf("init %s: created %v, %v", table, created, err)
		}
		return dynamo.Open(db, table)
	})
}

func TestInitIsIdempotent(t *testing.T) {
	db := client(t)
	ctx := context.Background()
	if _, err := dynamo.Init(ctx, db, "aviary-init"); err != nil {
		t.Fatal(err)
	}
	created, err := dynamo.Init(ctx, db, "aviary-init")
	if err != nil || created {
		t.Errorf("second init: created %v, %v", created, err)
	}
	out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("aviary-init")})
	if err != nil {
		t.Fatal(err)
	}
	if out.Table.BillingModeSummary == nil || out.Table.BillingModeSummary.BillingMode != "PAY_PER_REQUEST" || len(out.Table.GlobalSecondaryIndexes) != 1 {
		t.Errorf("table: %+v", out.Table)
	}
}
