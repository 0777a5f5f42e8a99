package sandbox_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

const queueARN = "arn:aws:sqs:us-east-1:000000000000:jobs"

func TestEventSourceMappings(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	e.createFunction(t, "consumer", zips.good)
	v1 := e.publish(t, "consumer")
	if _, err := e.lambda.CreateAlias(c, &lambda.CreateAliasInput{FunctionName: aws.String("consumer"), Name: aws.String("live"), FunctionVersion: aws.String(v1)}); err != nil {
		t.Fatal(err)
	}
	fnARN := "arn:aws:lambda:us-east-1:000000000000:function:consumer"

	created, err := e.lambda.CreateEventSourceMapping(c, &lambda.CreateEventSourceMappingInput{
		FunctionName: aws.String("consumer:live"), EventSourceArn: aws.String(queueARN)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := aws.ToString(created.FunctionArn), fnARN+":live"; got != want {
		t.Errorf("FunctionArn = %s, want %s", got, want)
	}
	if aws.ToString(created.State) != "Creating" || aws.ToInt32(created.BatchSize) != 10 || len(aws.ToString(created.UUID)) != 36 || created.LastModified == nil {
		t.Errorf("created: state %s batch %d uuid %q modified %v", aws.ToString(created.State), aws.ToInt32(created.BatchSize), aws.ToString(created.UUID), created.LastModified)
	}
	id := created.UUID
	got, err := e.lambda.GetEventSourceMapping(c, &lambda.GetEventSourceMappingInput{UUID: id})
	if err != nil || aws.ToString(got.State) != "Enabled" {
		t.Fatalf("GetEventSourceMapping: %v, state %s", err, aws.ToString(got.State))
	}
	// The same source and function twice conflicts.
	_, err = e.lambda.CreateEventSourceMapping(c, &lambda.CreateEventSourceMappingInput{
		FunctionName: aws.String(fnARN + ":live"), EventSourceArn: aws.String(queueARN)})
	wantAPIError[*lambdatypes.ResourceConflictException](t, err, 409)

	// Versions by ARN, the unqualified function, a stream needing StartingPosition.
	byVersion, err := e.lambda.CreateEventSourceMapping(c, &lambda.CreateEventSourceMappingInput{
		FunctionName: aws.String(fnARN + ":" + v1), EventSourceArn: aws.String(queueARN)})
	if err != nil || aws.ToString(byVersion.FunctionArn) != fnARN+":"+v1 {
		t.Fatalf("mapping on version: %v %v", err, byVersion)
	}
	stream := "arn:aws:kinesis:us-east-1:000000000000:stream/events"
	_, err = e.lambda.CreateEventSourceMapping(c, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("consumer"), EventSourceArn: aws.String(stream)})
	wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, 400)
	plain, err := e.lambda.CreateEventSourceMapping(c, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("consumer"),
		EventSourceArn: aws.String(stream), StartingPosition: lambdatypes.EventSourcePositionTrimHorizon, BatchSize: aws.Int32(500)})
	if err != nil || aws.ToString(plain.FunctionArn) != fnARN || aws.ToInt32(plain.BatchSize) != 500 {
		t.Fatalf("mapping on function: %v %v", err, plain)
	}

	// What must exist.
	for _, name := range []string{"nobody", "consumer:9", "consumer:ghost"} {
		_, err = e.lambda.CreateEventSourceMapping(c, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String(name), EventSourceArn: aws.String("arn:aws:sqs:us-east-1:000000000000:other")})
		wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, 404)
	}
	_, err = e.lambda.GetEventSourceMapping(c, &lambda.GetEventSourceMappingInput{UUID: aws.String("00000000-0000-4000-8000-000000000000")})
	wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, 404)

	// Filters: a plain name lists the unqualified function's mappings, a qualified name that
	// alias's or version's; EventSourceArn its source's.
	list := func(in *lambda.ListEventSourceMappingsInput) []string {
		t.Helper()
		var arns []string
		p := lambda.NewListEventSourceMappingsPaginator(e.lambda, in)
		for p.HasMorePages() {
			page, err := p.NextPage(c)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range page.EventSourceMappings {
				arns = append(arns, aws.ToString(m.FunctionArn))
			}
		}
		return arns
	}
	if got := list(&lambda.ListEventSourceMappingsInput{FunctionName: aws.String("consumer")}); len(got) != 1 || got[0] != fnARN {
		t.Errorf("by plain name: %v", got)
	}
	if got := list(&lambda.ListEventSourceMappingsInput{FunctionName: aws.String("consumer:live")}); len(got) != 1 || got[0] != fnARN+":live" {
		t.Errorf("by alias: %v", got)
	}
	if got := list(&lambda.ListEventSourceMappingsInput{EventSourceArn: aws.String(queueARN)}); len(got) != 2 {
		t.Errorf("by source: %v", got)
	}
	if got := list(&lambda.ListEventSourceMappingsInput{}); len(got) != 3 {
		t.Errorf("all: %v", got)
	}

	// Update: disable, change batch size and function; the answer says Disabling, then Disabled.
	up, err := e.lambda.UpdateEventSourceMapping(c, &lambda.UpdateEventSourceMappingInput{UUID: id, Enabled: aws.Bool(false), BatchSize: aws.Int32(5), FunctionName: aws.String("consumer:" + v1)})
	if err != nil || aws.ToString(up.State) != "Disabling" || aws.ToInt32(up.BatchSize) != 5 || aws.ToString(up.FunctionArn) != fnARN+":"+v1 {
		t.Fatalf("update: %v %+v", err, up)
	}
	if got, _ := e.lambda.GetEventSourceMapping(c, &lambda.GetEventSourceMappingInput{UUID: id}); aws.ToString(got.State) != "Disabled" {
		t.Errorf("after update: %s", aws.ToString(got.State))
	}
	_, err = e.lambda.UpdateEventSourceMapping(c, &lambda.UpdateEventSourceMappingInput{UUID: id, BatchSize: aws.Int32(20000)})
	wantValidation(t, err)
	_, err = e.lambda.UpdateEventSourceMapping(c, &lambda.UpdateEventSourceMappingInput{UUID: id, FunctionName: aws.String("consumer:7")})
	wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, 404)

	// Delete answers Deleting; the mapping is gone afterwards.
	del, err := e.lambda.DeleteEventSourceMapping(c, &lambda.DeleteEventSourceMappingInput{UUID: id})
	if err != nil || aws.ToString(del.State) != "Deleting" {
		t.Fatalf("delete: %v %v", err, del)
	}
	_, err = e.lambda.GetEventSourceMapping(c, &lambda.GetEventSourceMappingInput{UUID: id})
	wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, 404)
	_, err = e.lambda.DeleteEventSourceMapping(c, &lambda.DeleteEventSourceMappingInput{UUID: id})
	wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, 404)
}

func TestEventSourceMappingsPaginate(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	e.createFunction(t, "fanin", zips.good)
	const n = 130
	for i := range n {
		if _, err := e.lambda.CreateEventSourceMapping(c, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("fanin"),
			EventSourceArn: aws.String(fmt.Sprintf("arn:aws:sqs:us-east-1:000000000000:q%d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	first, err := e.lambda.ListEventSourceMappings(c, &lambda.ListEventSourceMappingsInput{MaxItems: aws.Int32(1000)})
	if err != nil || len(first.EventSourceMappings) != 100 || first.NextMarker == nil {
		t.Fatalf("MaxItems 1000 answers at most 100: %v, %d", err, len(first.EventSourceMappings))
	}
	seen := map[string]bool{}
	p := lambda.NewListEventSourceMappingsPaginator(e.lambda, &lambda.ListEventSourceMappingsInput{FunctionName: aws.String("fanin"), MaxItems: aws.Int32(40)})
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(c)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, m := range page.EventSourceMappings {
			seen[aws.ToString(m.UUID)] = true
		}
	}
	if len(seen) != n || pages != 4 {
		t.Errorf("paginated %d mappings in %d pages, want %d in 4", len(seen), pages, n)
	}
	_, err = e.lambda.ListEventSourceMappings(c, &lambda.ListEventSourceMappingsInput{Marker: aws.String("garbage")})
	wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, 400)
}

func TestProvisionedConcurrency(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	e.createFunction(t, "warm", zips.good)
	v1 := e.publish(t, "warm")
	e.updateCode(t, "warm", zips.bad)
	v2 := e.publish(t, "warm")
	if _, err := e.lambda.CreateAlias(c, &lambda.CreateAliasInput{FunctionName: aws.String("warm"), Name: aws.String("live"), FunctionVersion: aws.String(v2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.lambda.CreateAlias(c, &lambda.CreateAliasInput{FunctionName: aws.String("warm"), Name: aws.String("edge"), FunctionVersion: aws.String("$LATEST")}); err != nil {
		t.Fatal(err)
	}
	put := func(q string, n int32) (*lambda.PutProvisionedConcurrencyConfigOutput, error) {
		return e.lambda.PutProvisionedConcurrencyConfig(c, &lambda.PutProvisionedConcurrencyConfigInput{FunctionName: aws.String("warm"), Qualifier: aws.String(q), ProvisionedConcurrentExecutions: aws.Int32(n)})
	}
	out, err := put(v1, 3)
	if err != nil || out.Status != lambdatypes.ProvisionedConcurrencyStatusEnumInProgress || aws.ToInt32(out.RequestedProvisionedConcurrentExecutions) != 3 {
		t.Fatalf("put on version: %v %+v", err, out)
	}
	if _, err := put("live", 2); err != nil {
		t.Fatal(err)
	}
	_, err = put("$LATEST", 1)
	wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, 400)
	_, err = put("edge", 1) // an alias of $LATEST
	wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, 400)
	_, err = put("9", 1)
	wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, 404)
	_, err = put(v2, 1) // "live" points at v2 and has its own
	wantAPIError[*lambdatypes.ResourceConflictException](t, err, 409)

	got, err := e.lambda.GetProvisionedConcurrencyConfig(c, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("warm"), Qualifier: aws.String(v1)})
	if err != nil || got.Status != lambdatypes.ProvisionedConcurrencyStatusEnumReady || aws.ToInt32(got.AllocatedProvisionedConcurrentExecutions) != 3 || aws.ToString(got.LastModified) == "" {
		t.Fatalf("get: %v %+v", err, got)
	}
	_, err = e.lambda.GetProvisionedConcurrencyConfig(c, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("warm"), Qualifier: aws.String("edge")})
	wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, 400)
	e.publishAnother(t, "warm")
	_, err = e.lambda.GetProvisionedConcurrencyConfig(c, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("warm"), Qualifier: aws.String("3")})
	wantAPIError[*lambdatypes.ProvisionedConcurrencyConfigNotFoundException](t, err, 404)

	var arns []string
	p := lambda.NewListProvisionedConcurrencyConfigsPaginator(e.lambda, &lambda.ListProvisionedConcurrencyConfigsInput{FunctionName: aws.String("warm"), MaxItems: aws.Int32(1)})
	for p.HasMorePages() {
		page, err := p.NextPage(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, pc := range page.ProvisionedConcurrencyConfigs {
			arns = append(arns, aws.ToString(pc.FunctionArn))
		}
	}
	fnARN := "arn:aws:lambda:us-east-1:000000000000:function:warm"
	if strings.Join(arns, " ") != fnARN+":"+v1+" "+fnARN+":live" {
		t.Errorf("listed %v", arns)
	}
	_, err = e.lambda.ListProvisionedConcurrencyConfigs(c, &lambda.ListProvisionedConcurrencyConfigsInput{FunctionName: aws.String("warm"), MaxItems: aws.Int32(51)})
	wantValidation(t, err)

	// Deleting a version takes its provisioned concurrency with it.
	if _, err := e.lambda.DeleteFunction(c, &lambda.DeleteFunctionInput{FunctionName: aws.String("warm"), Qualifier: aws.String(v1)}); err != nil {
		t.Fatal(err)
	}
	list, err := e.lambda.ListProvisionedConcurrencyConfigs(c, &lambda.ListProvisionedConcurrencyConfigsInput{FunctionName: aws.String("warm")})
	if err != nil || len(list.ProvisionedConcurrencyConfigs) != 1 {
		t.Fatalf("after deleting version %s: %v %d configs", v1, err, len(list.ProvisionedConcurrencyConfigs))
	}
	if _, err := e.lambda.DeleteProvisionedConcurrencyConfig(c, &lambda.DeleteProvisionedConcurrencyConfigInput{FunctionName: aws.String("warm"), Qualifier: aws.String("live")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.lambda.GetProvisionedConcurrencyConfig(c, &lambda.GetProvisionedConcurrencyConfigInput{FunctionName: aws.String("warm"), Qualifier: aws.String("live")})
	wantAPIError[*lambdatypes.ProvisionedConcurrencyConfigNotFoundException](t, err, 404)
}

// publishAnother changes $LATEST's description and publishes it.
func (e *env) publishAnother(t *testing.T, name string) string {
	t.Helper()
	if _, err := e.lambda.UpdateFunctionConfiguration(ctx(t), &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(name), Description: aws.String(t.Name() + fmt.Sprint(len(name)))}); err != nil {
		t.Fatal(err)
	}
	return e.publish(t, name)
}

func TestDeleteVersionAndCodeSize(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	e.createFunction(t, "sized", zips.good)
	v1 := e.publish(t, "sized")
	e.updateCode(t, "sized", zips.bad)
	v2 := e.publish(t, "sized")
	v3 := e.publishAnother(t, "sized")
	good, bad := int64(len(zips.good)), int64(len(zips.bad))
	usage := func() int64 {
		t.Helper()
		out, err := e.lambda.GetAccountSettings(c, &lambda.GetAccountSettingsInput{})
		if err != nil {
			t.Fatal(err)
		}
		if got := out.AccountLimit.TotalCodeSize; got != 80530636800 {
			t.Errorf("AccountLimit.TotalCodeSize = %d, want 75 GB", got)
		}
		return out.AccountUsage.TotalCodeSize
	}
	// $LATEST (bad) and every published version count.
	if got, want := usage(), bad+good+bad+bad; got != want {
		t.Errorf("TotalCodeSize = %d, want %d", got, want)
	}
	if _, err := e.lambda.CreateAlias(c, &lambda.CreateAliasInput{FunctionName: aws.String("sized"), Name: aws.String("live"), FunctionVersion: aws.String(v2),
		RoutingConfig: &lambdatypes.AliasRoutingConfiguration{AdditionalVersionWeights: map[string]float64{v1: 0.1}}}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{v1, v2} {
		_, err := e.lambda.DeleteFunction(c, &lambda.DeleteFunctionInput{FunctionName: aws.String("sized"), Qualifier: aws.String(v)})
		wantAPIError[*lambdatypes.ResourceConflictException](t, err, 409)
	}
	_, err := e.lambda.DeleteFunction(c, &lambda.DeleteFunctionInput{FunctionName: aws.String("sized"), Qualifier: aws.String("$LATEST")})
	wantAPIError[*lambdatypes.InvalidParameterValueException](t, err, 400)
	// A version that does not exist: AWS answers success (measured against the live service).
	if _, err := e.lambda.DeleteFunction(c, &lambda.DeleteFunctionInput{FunctionName: aws.String("sized"), Qualifier: aws.String("99")}); err != nil {
		t.Errorf("delete of a missing version: %v", err)
	}
	_, err = e.lambda.DeleteFunction(c, &lambda.DeleteFunctionInput{FunctionName: aws.String("nobody"), Qualifier: aws.String("1")})
	wantAPIError[*lambdatypes.ResourceNotFoundException](t, err, 404)
	if _, err := e.lambda.DeleteFunction(c, &lambda.DeleteFunctionInput{FunctionName: aws.String("sized"), Qualifier: aws.String(v3)}); err != nil {
		t.Fatal(err)
	}
	if got, want := usage(), bad+good+bad; got != want {
		t.Errorf("after deleting version %s: TotalCodeSize = %d, want %d", v3, got, want)
	}
	if _, err := e.lambda.DeleteFunction(c, &lambda.DeleteFunctionInput{FunctionName: aws.String("sized")}); err != nil {
		t.Fatal(err)
	}
	if got := usage(); got != 0 {
		t.Errorf("after deleting the function: TotalCodeSize = %d", got)
	}
}
