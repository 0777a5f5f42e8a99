package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// fakeLambda answers prune's Lambda calls for one function with versions 1-6, no alias, and
// DeleteFunction answers by version.
type fakeLambda struct {
	deleteErr map[string]error
	deleted   []string
}

func (f *fakeLambda) ListVersionsByFunction(context.Context, *lambda.ListVersionsByFunctionInput, ...func(*lambda.Options)) (*lambda.ListVersionsByFunctionOutput, error) {
	var vs []lambdatypes.FunctionConfiguration
	for _, v := range []string{"$LATEST", "1", "2", "3", "4", "5", "6"} {
		vs = append(vs, lambdatypes.FunctionConfiguration{Version: aws.String(v)})
	}
	return &lambda.ListVersionsByFunctionOutput{Versions: vs}, nil
}

func (f *fakeLambda) ListAliases(context.Context, *lambda.ListAliasesInput, ...func(*lambda.Options)) (*lambda.ListAliasesOutput, error) {
	return &lambda.ListAliasesOutput{}, nil
}

func (f *fakeLambda) DeleteFunction(_ context.Context, in *lambda.DeleteFunctionInput, _ ...func(*lambda.Options)) (*lambda.DeleteFunctionOutput, error) {
	v := aws.ToString(in.Qualifier)
	f.deleted = append(f.deleted, v)
	return &lambda.DeleteFunctionOutput{}, f.deleteErr[v]
}

func (f *fakeLambda) ListEventSourceMappings(context.Context, *lambda.ListEventSourceMappingsInput, ...func(*lambda.Options)) (*lambda.ListEventSourceMappingsOutput, error) {
	return &lambda.ListEventSourceMappingsOutput{}, nil
}

func (f *fakeLambda) ListProvisionedConcurrencyConfigs(context.Context, *lambda.ListProvisionedConcurrencyConfigsInput, ...func(*lambda.Options)) (*lambda.ListProvisionedConcurrencyConfigsOutput, error) {
	return &lambda.ListProvisionedConcurrencyConfigsOutput{}, nil
}

type noDistributions struct{ err error }

func (n noDistributions) ListDistributions(context.Context, *cloudfront.ListDistributionsInput, ...func(*cloudfront.Options)) (*cloudfront.ListDistributionsOutput, error) {
	return &cloudfront.ListDistributionsOutput{DistributionList: &cftypes.DistributionList{}}, n.err
}

func (noDistributions) GetDistributionConfig(context.Context, *cloudfront.GetDistributionConfigInput, ...func(*cloudfront.Options)) (*cloudfront.GetDistributionConfigOutput, error) {
	return nil, errors.New("no distributions")
}

// TestPruneGoesOnAfterErrors: every refusal and failure is reported for its version, and every
// other version is still tried; the run counts the failures for its exit.
func TestPruneGoesOnAfterErrors(t *testing.T) {
	fl := &fakeLambda{deleteErr: map[string]error{
		"2": &lambdatypes.InvalidParameterValueException{Message: aws.String("Lambda was unable to delete arn:aws:lambda:us-east-1:123456789012:function:fn:2 because it is a replicated function. Please see our documentation for Deleting Lambda@Edge Functions and Replicas.")},
		"3": &lambdatypes.ResourceConflictException{Message: aws.String("Unable to delete version because the following aliases reference it: [live]")},
		"4": &lambdatypes.ServiceException{Message: aws.String("boom")},
		"5": &lambdatypes.ResourceNotFoundException{Message: aws.String("gone")},
	}}
	p := &pruner{lambda: fl, consumers: fl, cloudfront: noDistributions{}, keep: 1}
	res, err := p.run(t.Context(), []string{"fn"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(fl.deleted, ","); got != "1,2,3,4,5" {
		t.Errorf("tried to delete %s, want 1,2,3,4,5", got)
	}
	out := pruneOf("shop", "production", 1, false, nil, nil, res)
	if tt := out.Totals; tt.Deleted != 2 || tt.Deferred != 1 || tt.Kept != 2 || tt.Failed != 1 {
		t.Errorf("totals %+v, want 2 deleted (1, and 5 already gone), 1 deferred, 2 kept (3 in use, 6 newest), 1 failed", tt)
	}
	var b bytes.Buffer
	printPrune(&b, out)
	for _, want := range []string{"deleted       1, 5", "deferred      2 (still replicated", "kept          3 in-use Lambda refused: Unable to delete version", "failed        4:", "Deleted 2 versions; 1 deferred, 2 kept, 1 failed."} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, b.String())
		}
	}
}

// TestPruneDeletesNothingWithoutItsConsumers: when what consumes versions cannot be read,
// nothing is deleted.
func TestPruneDeletesNothingWithoutItsConsumers(t *testing.T) {
	fl := &fakeLambda{}
	p := &pruner{lambda: fl, consumers: fl, cloudfront: noDistributions{err: errors.New("AccessDenied")}, keep: 1}
	if _, err := p.run(t.Context(), []string{"fn"}, io.Discard); err == nil {
		t.Error("prune went on without reading CloudFront")
	}
	if len(fl.deleted) != 0 {
		t.Errorf("deleted %v", fl.deleted)
	}
}

// TestPruneDryRunDeletesNothing: a dry run reports what would go and calls no DeleteFunction.
func TestPruneDryRunDeletesNothing(t *testing.T) {
	fl := &fakeLambda{}
	p := &pruner{lambda: fl, consumers: fl, cloudfront: noDistributions{}, keep: 2, dryRun: true}
	res, err := p.run(t.Context(), []string{"fn"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(fl.deleted) != 0 || strings.Join(res[0].deleted, ",") != "1,2,3,4" {
		t.Errorf("called DeleteFunction for %v; would delete %v", fl.deleted, res[0].deleted)
	}
}
