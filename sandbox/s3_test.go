package sandbox_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func TestS3Objects(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	if _, err := e.s3.CreateBucket(c, &s3.CreateBucketInput{Bucket: aws.String("objects")}); err != nil {
		t.Fatal(err)
	}
	_, err := e.s3.CreateBucket(c, &s3.CreateBucketInput{Bucket: aws.String("objects")})
	if code := errorCode(err); code != "BucketAlreadyExists" {
		t.Errorf("creating an existing bucket: %v", err)
	}
	keys := []string{"a/1.zip", "a/2.zip", "a/3.zip", "b/1.zip", "b/deep/2.zip", "top.zip", "zz.zip"}
	for _, k := range keys {
		if _, err := e.s3.PutObject(c, &s3.PutObjectInput{Bucket: aws.String("objects"), Key: aws.String(k), Body: strings.NewReader("body of " + k)}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := e.s3.GetObject(c, &s3.GetObjectInput{Bucket: aws.String("objects"), Key: aws.String("b/deep/2.zip")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(got.Body)
	if string(body) != "body of b/deep/2.zip" {
		t.Errorf("GetObject = %q", body)
	}
	head, err := e.s3.HeadObject(c, &s3.HeadObjectInput{Bucket: aws.String("objects"), Key: aws.String("top.zip")})
	if err != nil || aws.ToInt64(head.ContentLength) != int64(len("body of top.zip")) {
		t.Errorf("HeadObject: %v %+v", err, head)
	}
	// HeadObject of a missing key is how Aviary asks "is this artifact there?".
	_, err = e.s3.HeadObject(c, &s3.HeadObjectInput{Bucket: aws.String("objects"), Key: aws.String("missing.zip")})
	var nf *s3types.NotFound
	if !errors.As(err, &nf) {
		t.Errorf("HeadObject of a missing key: %v, want NotFound", err)
	}
	_, err = e.s3.GetObject(c, &s3.GetObjectInput{Bucket: aws.String("objects"), Key: aws.String("missing.zip")})
	var nsk *s3types.NoSuchKey
	if !errors.As(err, &nsk) {
		t.Errorf("GetObject of a missing key: %v, want NoSuchKey", err)
	}

	// ListObjectsV2 pages through every key in order.
	var listed []string
	pages := 0
	p := s3.NewListObjectsV2Paginator(e.s3, &s3.ListObjectsV2Input{Bucket: aws.String("objects"), MaxKeys: aws.Int32(2)})
	for p.HasMorePages() {
		page, err := p.NextPage(c)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, o := range page.Contents {
			listed = append(listed, aws.ToString(o.Key))
		}
	}
	if got, want := strings.Join(listed, ","), strings.Join(keys, ","); got != want || pages != 4 {
		t.Errorf("listed %s in %d pages, want %s in 4", got, pages, want)
	}
	// Prefix and delimiter, paginated: common prefixes are not repeated across pages.
	var prefixes, direct []string
	p = s3.NewListObjectsV2Paginator(e.s3, &s3.ListObjectsV2Input{Bucket: aws.String("objects"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(1)})
	for p.HasMorePages() {
		page, err := p.NextPage(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, cp := range page.CommonPrefixes {
			prefixes = append(prefixes, aws.ToString(cp.Prefix))
		}
		for _, o := range page.Contents {
			direct = append(direct, aws.ToString(o.Key))
		}
	}
	if strings.Join(prefixes, ",") != "a/,b/" || strings.Join(direct, ",") != "top.zip,zz.zip" {
		t.Errorf("delimited listing: prefixes %v, keys %v", prefixes, direct)
	}

	// A conditional create (If-None-Match: *) of an existing key fails.
	_, err = e.s3.PutObject(c, &s3.PutObjectInput{Bucket: aws.String("objects"), Key: aws.String("top.zip"), IfNoneMatch: aws.String("*"), Body: strings.NewReader("x")})
	if code := errorCode(err); code != "PreconditionFailed" {
		t.Errorf("If-None-Match on an existing key: %v", err)
	}
	// A body that does not match its SHA-256 checksum is refused, and nothing is stored.
	_, err = e.s3.PutObject(c, &s3.PutObjectInput{Bucket: aws.String("objects"), Key: aws.String("checked.zip"), Body: strings.NewReader("the real body"),
		ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256, ChecksumSHA256: aws.String("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")})
	if code := errorCode(err); code != "BadDigest" {
		t.Errorf("a body that does not match its checksum: %v", err)
	}
	if _, err := e.s3.HeadObject(c, &s3.HeadObjectInput{Bucket: aws.String("objects"), Key: aws.String("checked.zip")}); err == nil {
		t.Error("the mismatching body was stored")
	}
	if _, err := e.s3.DeleteObject(c, &s3.DeleteObjectInput{Bucket: aws.String("objects"), Key: aws.String("top.zip")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s3.HeadObject(c, &s3.HeadObjectInput{Bucket: aws.String("objects"), Key: aws.String("top.zip")}); err == nil {
		t.Error("deleted object still there")
	}
}

func TestS3MultipartUpload(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	e.s3.CreateBucket(c, &s3.CreateBucketInput{Bucket: aws.String("big")})
	parts := make([][]byte, 3)
	for i := range parts {
		size := 5 << 20
		if i == len(parts)-1 {
			size = 1 << 20
		}
		parts[i] = make([]byte, size)
		rand.Read(parts[i])
	}
	up, err := e.s3.CreateMultipartUpload(c, &s3.CreateMultipartUploadInput{Bucket: aws.String("big"), Key: aws.String("artifact.zip")})
	if err != nil {
		t.Fatal(err)
	}
	var done []s3types.CompletedPart
	for i, p := range parts {
		out, err := e.s3.UploadPart(c, &s3.UploadPartInput{Bucket: aws.String("big"), Key: aws.String("artifact.zip"), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
		if err != nil {
			t.Fatal(err)
		}
		done = append(done, s3types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	if _, err := e.s3.CompleteMultipartUpload(c, &s3.CompleteMultipartUploadInput{Bucket: aws.String("big"), Key: aws.String("artifact.zip"),
		UploadId: up.UploadId, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: done}}); err != nil {
		t.Fatal(err)
	}
	got, err := e.s3.GetObject(c, &s3.GetObjectInput{Bucket: aws.String("big"), Key: aws.String("artifact.zip")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(got.Body)
	if !bytes.Equal(body, bytes.Join(parts, nil)) {
		t.Errorf("multipart object: %d bytes, want %d", len(body), len(bytes.Join(parts, nil)))
	}
}

func TestS3Versioning(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	e.s3.CreateBucket(c, &s3.CreateBucketInput{Bucket: aws.String("versioned")})
	if _, err := e.s3.PutBucketVersioning(c, &s3.PutBucketVersioningInput{Bucket: aws.String("versioned"),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	st, err := e.s3.GetBucketVersioning(c, &s3.GetBucketVersioningInput{Bucket: aws.String("versioned")})
	if err != nil || st.Status != s3types.BucketVersioningStatusEnabled {
		t.Fatalf("versioning status: %v %s", err, st.Status)
	}
	var ids []string
	for i := range 3 {
		out, err := e.s3.PutObject(c, &s3.PutObjectInput{Bucket: aws.String("versioned"), Key: aws.String("k.zip"), Body: strings.NewReader(fmt.Sprint("v", i))})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.VersionId) == "" {
			t.Fatal("PutObject in a versioned bucket returned no VersionId")
		}
		ids = append(ids, aws.ToString(out.VersionId))
	}
	del, err := e.s3.DeleteObject(c, &s3.DeleteObjectInput{Bucket: aws.String("versioned"), Key: aws.String("k.zip")})
	if err != nil || !aws.ToBool(del.DeleteMarker) {
		t.Fatalf("delete in a versioned bucket: %v %+v", err, del)
	}
	if _, err := e.s3.HeadObject(c, &s3.HeadObjectInput{Bucket: aws.String("versioned"), Key: aws.String("k.zip")}); err == nil {
		t.Error("the current version is a delete marker, yet HeadObject found the object")
	}
	// Older versions are still there: what restoring a lost artifact relies on.
	old, err := e.s3.GetObject(c, &s3.GetObjectInput{Bucket: aws.String("versioned"), Key: aws.String("k.zip"), VersionId: aws.String(ids[0])})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(old.Body)
	if string(body) != "v0" {
		t.Errorf("version %s = %q, want v0", ids[0], body)
	}
	// Versions list newest first, with the delete marker as latest; paginated one at a time.
	var listed []string
	in := &s3.ListObjectVersionsInput{Bucket: aws.String("versioned"), MaxKeys: aws.Int32(1)}
	for {
		page, err := e.s3.ListObjectVersions(c, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.DeleteMarkers {
			listed = append(listed, "marker:"+fmt.Sprint(aws.ToBool(m.IsLatest)))
		}
		for _, v := range page.Versions {
			listed = append(listed, aws.ToString(v.VersionId))
		}
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		in.KeyMarker, in.VersionIdMarker = page.NextKeyMarker, page.NextVersionIdMarker
	}
	want := []string{"marker:true", ids[2], ids[1], ids[0]}
	if strings.Join(listed, ",") != strings.Join(want, ",") {
		t.Errorf("versions = %v, want %v", listed, want)
	}
	// Deleting the marker brings the object back.
	vers, _ := e.s3.ListObjectVersions(c, &s3.ListObjectVersionsInput{Bucket: aws.String("versioned")})
	if _, err := e.s3.DeleteObject(c, &s3.DeleteObjectInput{Bucket: aws.String("versioned"), Key: aws.String("k.zip"), VersionId: vers.DeleteMarkers[0].VersionId}); err != nil {
		t.Fatal(err)
	}
	cur, err := e.s3.GetObject(c, &s3.GetObjectInput{Bucket: aws.String("versioned"), Key: aws.String("k.zip")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(cur.Body)
	if string(body) != "v2" {
		t.Errorf("after removing the delete marker: %q, want v2", body)
	}
}

func TestS3Lifecycle(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	e.s3.CreateBucket(c, &s3.CreateBucketInput{Bucket: aws.String("withrules")})
	_, err := e.s3.GetBucketLifecycleConfiguration(c, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String("withrules")})
	if code := errorCode(err); code != "NoSuchLifecycleConfiguration" {
		t.Fatalf("lifecycle of a bucket without one: %v", err)
	}
	if _, err := e.s3.PutBucketLifecycleConfiguration(c, &s3.PutBucketLifecycleConfigurationInput{Bucket: aws.String("withrules"),
		LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: []s3types.LifecycleRule{{
			ID: aws.String("expire-artifacts"), Status: s3types.ExpirationStatusEnabled,
			Filter:     &s3types.LifecycleRuleFilter{Prefix: aws.String("artifacts/")},
			Expiration: &s3types.LifecycleExpiration{Days: aws.Int32(30)},
		}}}}); err != nil {
		t.Fatal(err)
	}
	got, err := e.s3.GetBucketLifecycleConfiguration(c, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String("withrules")})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Rules) != 1 || aws.ToString(got.Rules[0].ID) != "expire-artifacts" || aws.ToString(got.Rules[0].Filter.Prefix) != "artifacts/" ||
		aws.ToInt32(got.Rules[0].Expiration.Days) != 30 || got.Rules[0].Status != s3types.ExpirationStatusEnabled {
		t.Errorf("stored lifecycle: %+v", got.Rules)
	}
	if _, err := e.s3.DeleteBucketLifecycle(c, &s3.DeleteBucketLifecycleInput{Bucket: aws.String("withrules")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.s3.GetBucketLifecycleConfiguration(c, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String("withrules")})
	if code := errorCode(err); code != "NoSuchLifecycleConfiguration" {
		t.Errorf("lifecycle after delete: %v", err)
	}
}
