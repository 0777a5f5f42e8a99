package lambdafleet_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/aviary-deploy/aviary/artifact"
	"github.com/aviary-deploy/aviary/lambdafleet"
	"github.com/aviary-deploy/aviary/release"
)

// prefixOnlyBucket is S3 to a caller whose s3:ListBucket is conditioned on s3:prefix: every
// HeadObject answers 403 (a missing key's 404 needs an unconditioned ListBucket), listings work.
type prefixOnlyBucket struct {
	lambdafleet.S3API // nil: a call the test does not expect panics
	keys              []string
	puts              int
	bodies            []io.Reader
	lengths           []int64
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
	b.bodies = append(b.bodies, in.Body)
	b.lengths = append(b.lengths, aws.ToInt64(in.ContentLength))
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

// TestUploadStreamsFromTheCache: an artifact in the local cache is sent as its file, never read
// into memory whole, with its length.
func TestUploadStreamsFromTheCache(t *testing.T) {
	cache := artifact.Cache{Dir: t.TempDir()}
	zip := bytes.Repeat([]byte("the code "), 1<<16)
	d, err := cache.Put(zip)
	if err != nil {
		t.Fatal(err)
	}
	key := artifact.Key("releases/shop", d)
	bucket := &prefixOnlyBucket{}
	if err := (&lambdafleet.Fleet{S3: bucket}).Upload(context.Background(), release.Artifacts{Bucket: "shop-artifacts"}, key, cache); err != nil {
		t.Fatal(err)
	}
	if got, want := bucket.puts, 1; got != want {
		t.Fatalf("%d puts, want %d", got, want)
	}
	if _, ok := bucket.bodies[0].(*os.File); !ok {
		t.Errorf("PutObject's body is a %T, want the cached *os.File", bucket.bodies[0])
	}
	if got, want := bucket.lengths[0], int64(len(zip)); got != want {
		t.Errorf("ContentLength %d, want %d", got, want)
	}
	// A cached file whose bytes no longer match its name is refused.
	if err := os.WriteFile(cache.Path(d), []byte("tampered"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := (&lambdafleet.Fleet{S3: &prefixOnlyBucket{}}).Upload(context.Background(), release.Artifacts{Bucket: "shop-artifacts"}, key, cache); err == nil {
		t.Error("a corrupt cached artifact was uploaded")
	}
}
