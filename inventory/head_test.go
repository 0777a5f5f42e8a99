package inventory

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// forbiddenBucket answers every HeadObject as S3 does for a caller without an unconditioned
// s3:ListBucket (403), and lists its keys unless listing is denied too.
type forbiddenBucket struct {
	keys    []string
	headErr error
	listErr error
	lists   int
}

func (b *forbiddenBucket) HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	return nil, b.headErr
}

func (b *forbiddenBucket) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	b.lists++
	if b.listErr != nil {
		return nil, b.listErr
	}
	out := &s3.ListObjectsV2Output{}
	for _, k := range b.keys {
		if strings.HasPrefix(k, aws.ToString(in.Prefix)) {
			out.Contents = append(out.Contents, s3types.Object{Key: aws.String(k)})
		}
	}
	return out, nil
}

// status403 is a bare 403, as the SDK reports a HEAD's answer that has no body.
func status403() error {
	return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: http.StatusForbidden}},
		Err: &smithy.GenericAPIError{Code: "Forbidden", Message: "Forbidden"}}
}

func TestHeadObjectTellsMissingFromForbidden(t *testing.T) {
	const key = "releases/shop/ab.zip"
	denied := &smithy.GenericAPIError{Code: "AccessDenied"}
	for _, tc := range []struct {
		name      string
		b         *forbiddenBucket
		wantFound bool
		wantErr   bool
		wantLists int
	}{
		{"403, not listed: missing", &forbiddenBucket{headErr: status403(), keys: []string{key + ".old"}}, false, false, 1},
		{"AccessDenied, not listed: missing", &forbiddenBucket{headErr: &smithy.GenericAPIError{Code: "AccessDenied"}}, false, false, 1},
		{"403, listed: forbidden", &forbiddenBucket{headErr: status403(), keys: []string{key}}, false, true, 1},
		{"403, listing denied too", &forbiddenBucket{headErr: status403(), listErr: denied}, false, true, 1},
		{"404: missing, no listing", &forbiddenBucket{headErr: &s3types.NotFound{}}, false, false, 0},
		{"another error: no listing", &forbiddenBucket{headErr: &smithy.GenericAPIError{Code: "SlowDown"}}, false, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, found, err := HeadObject(context.Background(), tc.b, "shop-artifacts", key)
			if found != tc.wantFound || (err != nil) != tc.wantErr || tc.b.lists != tc.wantLists {
				t.Fatalf("HeadObject: found %v, err %v, %d listings; want found %v, error %v, %d listings", found, err, tc.b.lists, tc.wantFound, tc.wantErr, tc.wantLists)
			}
		})
	}
}
