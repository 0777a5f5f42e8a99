package sandbox_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

type lifecycleReport struct {
	Expired, DeleteMarkersRemoved, NoncurrentRemoved []struct{ Bucket, Key, VersionID string }
	Transitioned                                     []struct{ Key, StorageClass string }
}

// applyLifecycle calls the admin endpoint a rehearsal uses.
func (e *env) applyLifecycle(t *testing.T, body string) lifecycleReport {
	t.Helper()
	resp, err := http.Post(e.srv.URL+"/_aviary/s3/lifecycle/apply", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("lifecycle/apply %s: %s", body, resp.Status)
	}
	var rep lifecycleReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

func (e *env) put(t *testing.T, bucket, key, body string) {
	t.Helper()
	if _, err := e.s3.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader([]byte(body))}); err != nil {
		t.Fatal(err)
	}
}

func (e *env) rules(t *testing.T, bucket string, rules ...s3types.LifecycleRule) {
	t.Helper()
	if _, err := e.s3.PutBucketLifecycleConfiguration(ctx(t), &s3.PutBucketLifecycleConfigurationInput{Bucket: aws.String(bucket),
		LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: rules}}); err != nil {
		t.Fatal(err)
	}
}

func keysOf(rs []struct{ Bucket, Key, VersionID string }) string {
	var ks []string
	for _, r := range rs {
		ks = append(ks, r.Key)
	}
	return strings.Join(ks, ",")
}

func TestS3LifecycleApplyUnversioned(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	e.s3.CreateBucket(c, &s3.CreateBucketInput{Bucket: aws.String("plain")})
	e.put(t, "plain", "artifacts/a.zip", "aaaa")
	e.put(t, "plain", "artifacts/big.zip", strings.Repeat("b", 100))
	e.put(t, "plain", "logs/x", "x")
	e.put(t, "plain", "tagged/t", "t")
	e.put(t, "plain", "tagged/u", "u")
	if _, err := e.s3.PutObjectTagging(c, &s3.PutObjectTaggingInput{Bucket: aws.String("plain"), Key: aws.String("tagged/t"),
		Tagging: &s3types.Tagging{TagSet: []s3types.Tag{{Key: aws.String("tier"), Value: aws.String("tmp")}}}}); err != nil {
		t.Fatal(err)
	}
	tags, err := e.s3.GetObjectTagging(c, &s3.GetObjectTaggingInput{Bucket: aws.String("plain"), Key: aws.String("tagged/t")})
	if err != nil || len(tags.TagSet) != 1 || aws.ToString(tags.TagSet[0].Value) != "tmp" {
		t.Fatalf("tags: %v %+v", err, tags)
	}
	e.rules(t, "plain",
		s3types.LifecycleRule{ID: aws.String("logs"), Status: s3types.ExpirationStatusEnabled,
			Filter: &s3types.LifecycleRuleFilter{Prefix: aws.String("logs/")}, Expiration: &s3types.LifecycleExpiration{Days: aws.Int32(30)}},
		s3types.LifecycleRule{ID: aws.String("off"), Status: s3types.ExpirationStatusDisabled,
			Filter: &s3types.LifecycleRuleFilter{Prefix: aws.String("artifacts/")}, Expiration: &s3types.LifecycleExpiration{Days: aws.Int32(1)}},
		s3types.LifecycleRule{ID: aws.String("big"), Status: s3types.ExpirationStatusEnabled,
			Filter:      &s3types.LifecycleRuleFilter{And: &s3types.LifecycleRuleAndOperator{Prefix: aws.String("artifacts/"), ObjectSizeGreaterThan: aws.Int64(50)}},
			Transitions: []s3types.Transition{{Days: aws.Int32(90), StorageClass: s3types.TransitionStorageClassGlacier}}},
		s3types.LifecycleRule{ID: aws.String("tmp"), Status: s3types.ExpirationStatusEnabled,
			Filter: &s3types.LifecycleRuleFilter{Tag: &s3types.Tag{Key: aws.String("tier"), Value: aws.String("tmp")}}, Expiration: &s3types.LifecycleExpiration{Days: aws.Int32(7)}},
	)
	// Ten days on: only the tagged rule's 7 days have passed.
	rep := e.applyLifecycle(t, `{"bucket": "plain", "days": 10}`)
	if got := keysOf(rep.Expired); got != "tagged/t" || len(rep.Transitioned) != 0 {
		t.Errorf("after 10 days: expired %q, transitioned %v", got, rep.Transitioned)
	}
	// Every rule's days: logs expire, the big artifact goes to Glacier, the disabled rule does nothing.
	rep = e.applyLifecycle(t, `{}`)
	if got := keysOf(rep.Expired); got != "logs/x" {
		t.Errorf("expired %q, want logs/x", got)
	}
	if len(rep.Transitioned) != 1 || rep.Transitioned[0].Key != "artifacts/big.zip" || rep.Transitioned[0].StorageClass != "GLACIER" {
		t.Errorf("transitioned %+v", rep.Transitioned)
	}
	list, err := e.s3.ListObjectsV2(c, &s3.ListObjectsV2Input{Bucket: aws.String("plain")})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, o := range list.Contents {
		left = append(left, aws.ToString(o.Key))
	}
	if got := strings.Join(left, ","); got != "artifacts/a.zip,artifacts/big.zip,tagged/u" {
		t.Errorf("left %s", got)
	}
	head, err := e.s3.HeadObject(c, &s3.HeadObjectInput{Bucket: aws.String("plain"), Key: aws.String("artifacts/big.zip")})
	if err != nil || head.StorageClass != s3types.StorageClassGlacier {
		t.Errorf("head of transitioned: %v %q", err, head.StorageClass)
	}
	_, err = e.s3.GetObject(c, &s3.GetObjectInput{Bucket: aws.String("plain"), Key: aws.String("artifacts/big.zip")})
	var ios *s3types.InvalidObjectState
	if !errors.As(err, &ios) || errorCode(err) != "InvalidObjectState" {
		t.Errorf("GetObject of a Glacier object: %v", err)
	}
	if _, err := e.s3.GetObject(c, &s3.GetObjectInput{Bucket: aws.String("plain"), Key: aws.String("artifacts/a.zip")}); err != nil {
		t.Errorf("GetObject of a STANDARD object: %v", err)
	}
}

func TestS3LifecycleApplyVersioned(t *testing.T) {
	t.Parallel()
	e := start(t, fast)
	c := ctx(t)
	e.s3.CreateBucket(c, &s3.CreateBucketInput{Bucket: aws.String("vers")})
	if _, err := e.s3.PutBucketVersioning(c, &s3.PutBucketVersioningInput{Bucket: aws.String("vers"),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"v1", "v2", "v3", "v4"} {
		e.put(t, "vers", "artifacts/app.zip", body)
	}
	e.put(t, "vers", "old/gone", "x")
	if _, err := e.s3.DeleteObject(c, &s3.DeleteObjectInput{Bucket: aws.String("vers"), Key: aws.String("old/gone")}); err != nil {
		t.Fatal(err)
	}
	e.put(t, "vers", "scratch/s", "s")
	e.rules(t, "vers",
		s3types.LifecycleRule{ID: aws.String("keep-two"), Status: s3types.ExpirationStatusEnabled,
			Filter:                      &s3types.LifecycleRuleFilter{Prefix: aws.String("artifacts/")},
			NoncurrentVersionExpiration: &s3types.NoncurrentVersionExpiration{NoncurrentDays: aws.Int32(30), NewerNoncurrentVersions: aws.Int32(1)},
			NoncurrentVersionTransitions: []s3types.NoncurrentVersionTransition{{NoncurrentDays: aws.Int32(1),
				StorageClass: s3types.TransitionStorageClassGlacierIr}}},
		s3types.LifecycleRule{ID: aws.String("old"), Status: s3types.ExpirationStatusEnabled,
			Filter: &s3types.LifecycleRuleFilter{Prefix: aws.String("old/")}, NoncurrentVersionExpiration: &s3types.NoncurrentVersionExpiration{NoncurrentDays: aws.Int32(1)},
			Expiration: &s3types.LifecycleExpiration{ExpiredObjectDeleteMarker: aws.Bool(true)}},
		s3types.LifecycleRule{ID: aws.String("scratch"), Status: s3types.ExpirationStatusEnabled,
			Filter: &s3types.LifecycleRuleFilter{Prefix: aws.String("scratch/")}, Expiration: &s3types.LifecycleExpiration{Days: aws.Int32(1)}},
	)
	rep := e.applyLifecycle(t, `{"bucket": "vers", "days": 40}`)
	// app.zip: v4 current; v3 is the one newer noncurrent kept; v2, v1 removed.
	if got := keysOf(rep.NoncurrentRemoved); got != "artifacts/app.zip,artifacts/app.zip,old/gone" {
		t.Errorf("noncurrent removed: %q", got)
	}
	if got := keysOf(rep.DeleteMarkersRemoved); got != "old/gone" {
		t.Errorf("delete markers removed: %q", got)
	}
	if got := keysOf(rep.Expired); got != "scratch/s" {
		t.Errorf("expired: %q", got)
	}
	vs, err := e.s3.ListObjectVersions(c, &s3.ListObjectVersionsInput{Bucket: aws.String("vers")})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs.Versions {
		got = append(got, aws.ToString(v.Key)+"/"+string(v.StorageClass))
	}
	if strings.Join(got, " ") != "artifacts/app.zip/STANDARD artifacts/app.zip/GLACIER_IR scratch/s/STANDARD" {
		t.Errorf("versions left: %v", got)
	}
	if len(vs.DeleteMarkers) != 1 || aws.ToString(vs.DeleteMarkers[0].Key) != "scratch/s" {
		t.Errorf("delete markers: %+v", vs.DeleteMarkers)
	}
	// The noncurrent GLACIER_IR version is still readable, as S3 serves Instant Retrieval.
	if _, err := e.s3.GetObject(c, &s3.GetObjectInput{Bucket: aws.String("vers"), Key: aws.String("artifacts/app.zip"), VersionId: vs.Versions[1].VersionId}); err != nil {
		t.Errorf("GetObject of GLACIER_IR version: %v", err)
	}
}
