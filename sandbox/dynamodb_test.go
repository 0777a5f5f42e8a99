package sandbox_test

import (
	"slices"
	"time"

	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/aviary-deploy/aviary/internal/dynalite"
	"github.com/aviary-deploy/aviary/sandbox"
)

// With an upstream, the sandbox's endpoint serves DynamoDB: the SDK's requests reach dynalite
// and its answers come back, errors included.
func TestDynamoDBForwardsToUpstream(t *testing.T) {
	opts := fast
	opts.DynamoDB = dynalite.Endpoint(t)
	e := start(t, opts)
	c := dynamodb.NewFromConfig(e.cfg)
	table := aws.String("sandbox-forward-" + t.Name())
	_, err := c.CreateTable(ctx(t), &dynamodb.CreateTableInput{TableName: table, BillingMode: ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: ddbtypes.KeyTypeHash}}})
	if err != nil {
		t.Fatalf("CreateTable through the sandbox: %v", err)
	}
	t.Cleanup(func() { c.DeleteTable(ctx(t), &dynamodb.DeleteTableInput{TableName: table}) })
	// A table is CREATING at first, and an item write then is ResourceNotFoundException (on
	// DynamoDB as on dynalite, whose CREATING lasts a timer's turn): wait for it, as a client must.
	if err := dynamodb.NewTableExistsWaiter(c, func(o *dynamodb.TableExistsWaiterOptions) { o.MinDelay = 10 * time.Millisecond }).
		Wait(ctx(t), &dynamodb.DescribeTableInput{TableName: table}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutItem(ctx(t), &dynamodb.PutItemInput{TableName: table, Item: map[string]ddbtypes.AttributeValue{
		"pk": &ddbtypes.AttributeValueMemberS{Value: "a"}, "v": &ddbtypes.AttributeValueMemberS{Value: "1"}}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetItem(ctx(t), &dynamodb.GetItemInput{TableName: table, Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := got.Item["v"].(*ddbtypes.AttributeValueMemberS); v == nil || v.Value != "1" {
		t.Errorf("GetItem = %v, want v=1", got.Item)
	}
	_, err = c.DescribeTable(ctx(t), &dynamodb.DescribeTableInput{TableName: aws.String("no-such-table")})
	wantAPIError[*ddbtypes.ResourceNotFoundException](t, err, 400)
	var ops []string
	for _, r := range e.srv.Requests() {
		if r.Service == "dynamodb" {
			if r.Operation == "DescribeTable" && !slices.Contains(ops, "PutItem") {
				continue // the waiter's
			}
			ops = append(ops, r.Operation)
		}
	}
	if got, want := strings.Join(ops, ","), "CreateTable,PutItem,GetItem,DescribeTable"; !strings.HasPrefix(got, want) {
		t.Errorf("the request log's DynamoDB operations = %s, want %s first", got, want)
	}
}

// Without an upstream, DynamoDB requests are refused with a clear error, not served half-way.
func TestDynamoDBWithoutUpstream(t *testing.T) {
	e := start(t, fast)
	c := dynamodb.NewFromConfig(e.cfg, func(o *dynamodb.Options) { o.Retryer = aws.NopRetryer{} })
	_, err := c.ListTables(ctx(t), &dynamodb.ListTablesInput{})
	if ae := wantAPIError[smithy.APIError](t, err, 400); ae.ErrorCode() != "UnknownOperationException" || !strings.Contains(ae.ErrorMessage(), "--dynamodb") {
		t.Fatalf("ListTables without an upstream: %v, want UnknownOperationException saying to pass --dynamodb", err)
	}
}

// An injected throttle is DynamoDB's own: ProvisionedThroughputExceededException (400) for reads
// and writes of items, ThrottlingException for the control plane.
func TestDynamoDBInjectedThrottle(t *testing.T) {
	e := start(t, fast)
	if err := e.srv.SetFaults(sandbox.Faults{Rate: 1, Kinds: []string{"throttle"}, Services: []string{"dynamodb"}}); err != nil {
		t.Fatal(err)
	}
	c := dynamodb.NewFromConfig(e.cfg, func(o *dynamodb.Options) { o.Retryer = aws.NopRetryer{} })
	_, err := c.GetItem(ctx(t), &dynamodb.GetItemInput{TableName: aws.String("t"), Key: map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: "a"}}})
	wantAPIError[*ddbtypes.ProvisionedThroughputExceededException](t, err, 400)
	_, err = c.ListTables(ctx(t), &dynamodb.ListTablesInput{})
	wantAPIError[*ddbtypes.ThrottlingException](t, err, 400)
}
