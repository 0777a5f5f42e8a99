// Package inventory reads what exists on AWS that retention decides about: a function's versions
// and aliases, and (in the files beside this one) what else names its versions and what the
// artifact bucket holds. It reads, except for DeleteVersion (delete.go), which deletes one version
// prune chose and classifies Lambda's answer; every list is paginated to its end, and every call
// goes through the clients it is given (Lambda's under the shared control-plane limiter).
package inventory

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// LambdaAPI is the part of *lambda.Client the inventory reads with.
type LambdaAPI interface {
	ListVersionsByFunction(context.Context, *lambda.ListVersionsByFunctionInput, ...func(*lambda.Options)) (*lambda.ListVersionsByFunctionOutput, error)
	ListAliases(context.Context, *lambda.ListAliasesInput, ...func(*lambda.Options)) (*lambda.ListAliasesOutput, error)
}

var _ LambdaAPI = (*lambda.Client)(nil)

// Version is one published version of a function.
type Version struct {
	Number     string `json:"version"`
	CodeSha256 string `json:"codeSha256"`
	CodeSize   int64  `json:"codeSize"`
	// LastModified is as Lambda reports it (ISO 8601).
	LastModified string `json:"lastModified,omitempty"`
}

// N is the version's number; 0 for $LATEST or anything unnumbered.
func (v Version) N() int {
	n, _ := strconv.Atoi(v.Number)
	return n
}

// Alias is one alias of a function: its version and any extra weights.
type Alias struct {
	Name    string             `json:"name"`
	Version string             `json:"version"`
	Weights map[string]float64 `json:"weights,omitempty"`
}

// Function is what the inventory read of one Lambda function.
type Function struct {
	Name string
	// Latest is $LATEST's code.
	Latest Version
	// Versions are the published versions, oldest first.
	Versions []Version
	Aliases  []Alias
	// Missing says the function does not exist.
	Missing bool
}

// ReadFunction reads a function's versions and aliases, every page of each.
func ReadFunction(ctx context.Context, c LambdaAPI, name string) (Function, error) {
	fn := Function{Name: name}
	vp := lambda.NewListVersionsByFunctionPaginator(c, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String(name), MaxItems: aws.Int32(50)})
	for vp.HasMorePages() {
		page, err := vp.NextPage(ctx)
		if err != nil {
			var nf *lambdatypes.ResourceNotFoundException
			if errors.As(err, &nf) {
				return Function{Name: name, Missing: true}, nil
			}
			return fn, fmt.Errorf("list the versions of %s: %w", name, err)
		}
		for _, v := range page.Versions {
			ver := Version{Number: aws.ToString(v.Version), CodeSha256: aws.ToString(v.CodeSha256), CodeSize: v.CodeSize, LastModified: aws.ToString(v.LastModified)}
			if ver.Number == "$LATEST" {
				fn.Latest = ver
				continue
			}
			fn.Versions = append(fn.Versions, ver)
		}
	}
	sortVersions(fn.Versions)
	ap := lambda.NewListAliasesPaginator(c, &lambda.ListAliasesInput{FunctionName: aws.String(name), MaxItems: aws.Int32(50)})
	for ap.HasMorePages() {
		page, err := ap.NextPage(ctx)
		if err != nil {
			return fn, fmt.Errorf("list the aliases of %s: %w", name, err)
		}
		for _, a := range page.Aliases {
			al := Alias{Name: aws.ToString(a.Name), Version: aws.ToString(a.FunctionVersion)}
			if a.RoutingConfig != nil && len(a.RoutingConfig.AdditionalVersionWeights) > 0 {
				al.Weights = a.RoutingConfig.AdditionalVersionWeights
			}
			fn.Aliases = append(fn.Aliases, al)
		}
	}
	return fn, nil
}

func sortVersions(vs []Version) {
	for i := 1; i < len(vs); i++ {
		for j := i; j > 0 && vs[j].N() < vs[j-1].N(); j-- {
			vs[j], vs[j-1] = vs[j-1], vs[j]
		}
	}
}
