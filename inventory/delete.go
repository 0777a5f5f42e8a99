package inventory

import (
	"context"
	"errors"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// DeleteAPI is the part of *lambda.Client prune deletes versions with: the one write of this
// package.
type DeleteAPI interface {
	DeleteFunction(context.Context, *lambda.DeleteFunctionInput, ...func(*lambda.Options)) (*lambda.DeleteFunctionOutput, error)
}

var _ DeleteAPI = (*lambda.Client)(nil)

// Outcome is what became of one version prune tried to delete.
type Outcome string

const (
	// Deleted: the version is gone.
	Deleted Outcome = "deleted"
	// Deferred: Lambda refused because the version is still replicated (Lambda@Edge, until
	// CloudFront removes its replicas, hours after the last association went). The next run
	// tries again.
	Deferred Outcome = "deferred"
	// Conflict: Lambda refused because something uses the version now (an alias moved onto it
	// since the read); it stays.
	Conflict Outcome = "kept"
	// Gone: the version was already gone.
	Gone Outcome = "gone"
	// Failed: anything else; the run goes on and ends in an error.
	Failed Outcome = "failed"
)

// DeleteVersion deletes one published version (never the function: version must be a number)
// and classifies the answer. err is nil unless the outcome is Failed; for Deferred and Conflict
// it is the refusal, to report.
func DeleteVersion(ctx context.Context, c DeleteAPI, function, version string) (Outcome, error) {
	if !isVersion(version) {
		return Failed, errors.New("not a published version: " + version)
	}
	_, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(function), Qualifier: aws.String(version)})
	return Classify(err), err
}

// Classify maps DeleteFunction's answer for a version to its outcome: by the error's type, and
// for the one refusal AWS tells apart only by its message, by that message (see replicated).
func Classify(err error) Outcome {
	if err == nil {
		return Deleted
	}
	var (
		conflict *lambdatypes.ResourceConflictException
		notFound *lambdatypes.ResourceNotFoundException
	)
	switch {
	case replicated(err):
		return Deferred
	case errors.As(err, &conflict):
		return Conflict
	case errors.As(err, &notFound):
		return Gone
	}
	return Failed
}

// replicatedMessage is how Lambda says a version cannot be deleted because CloudFront still
// holds replicas of it. AWS gives no code of its own for the case: the error is an
// InvalidParameterValueException like any bad parameter, and only its message ("Lambda was unable
// to delete arn:…:function:NAME:VERSION because it is a replicated function. Please see our
// documentation for Deleting Lambda@Edge Functions and Replicas.") tells it apart. This is the one
// place Aviary reads an AWS message, and TestClassifyReplicated names the message in full.
const replicatedMessage = "because it is a replicated function"

func replicated(err error) bool {
	var invalid *lambdatypes.InvalidParameterValueException
	return errors.As(err, &invalid) && strings.Contains(invalid.ErrorMessage(), replicatedMessage)
}
