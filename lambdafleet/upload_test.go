package lambdafleet_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/aviary-deploy/aviary/lambdafleet"
	"github.com/aviary-deploy/aviary/release"
)

// prefixOnlyBucket is S3 to a caller whose s3:ListBucket is conditioned on s3:prefix: every
// HeadObject answers 403 (a missing key's 404 needs an unconditioned ListBucket), listings work.
type prefixOnlyBucket struct {
	lambdafleet.S3API // nil: a call the test does not expect panics
	keys              []string
	puts              int
}

func (b *prefixOnlyBucket) HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	return nil, &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: http.StatusForbidden}},
		Err: &smithy.GenericAPIError{Code: "Forbidden", Message: "Forbidden"}}
}

func (b *prefixOnlyBucket) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	out := &s3.ListObjectsV2Output{}
	for _, k := range b.keys {
		if strings.HasPrefix(k, aws.ToString(in.Prefix)) {
			out.Contents = append(out.Contents, s3types.Object{Key: aws.String(k)})
		}
	}
	return out, nil
}

func (b *prefixOnlyBucket) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	b.puts++
	b.keys = append(b.keys, aws.ToString(in.Key))
	return &s3.PutObjectOutput{}, nil
}

type bytesSource []byte

func (s bytesSource) Read(string) ([]byte, error) { return s, nil }

func TestUploadTellsMissingFromForbidden(t *testing.T) {
	zip := []byte("the code")
	sum := sha256.Sum256(zip)
	key := "releases/shop/" + hex.EncodeToString(sum[:]) + ".zip"
	a := release.Artifacts{Bucket: "shop-artifacts", Prefix: "releases/shop"}

	missing := &prefixOnlyBucket{}
	if err := (&lambdafleet.Fleet{S3: missing}).Upload(context.Background(), a, key, bytesSource(zip)); err != nil || missing.puts != 1 {
		t.Fatalf("Upload of a missing key behind a 403: %v, %d puts; want it uploaded once", err, missing.puts)
	}
	present := &prefixOnlyBucket{keys: []string{key}}
	if err := (&lambdafleet.Fleet{S3: present}).Upload(context.Background(), a, key, bytesSource(zip)); err != nil || present.puts != 0 {
		t.Fatalf("Upload of a listed key behind a 403: %v, %d puts; want none", err, present.puts)
	}
}
