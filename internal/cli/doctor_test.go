package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/aviary-deploy/aviary/artifact"
	"github.com/aviary-deploy/aviary/lambdafleet"
	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/retention"
)

// bucketFake is an artifact bucket in memory, for the readiness check's decisions.
type bucketFake struct {
	lambdafleet.S3API
	objects map[string][]byte
	// sizes override what HeadObject reports as an object's size.
	sizes map[string]int64
	puts  int
	gets  int
}

func (b *bucketFake) HeadObject(_ context.Context, in *s3.HeadObjectInput, _ ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	o, ok := b.objects[aws.ToString(in.Key)]
	if !ok {
		return nil, &s3types.NotFound{}
	}
	size := int64(len(o))
	if n, ok := b.sizes[aws.ToString(in.Key)]; ok {
		size = n
	}
	return &s3.HeadObjectOutput{ContentLength: aws.Int64(size)}, nil
}

func (b *bucketFake) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	b.gets++
	o, ok := b.objects[aws.ToString(in.Key)]
	if !ok {
		return nil, &s3types.NoSuchKey{}
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(o))}, nil
}

// An object S3 recorded no SHA-256 of: doctor hashes it when it is at most HashAtMost bytes (a
// mismatch is a problem), and says the digest is unverified above that; never "fine" unchecked.
func TestCheckHashesWhatS3RecordedNoDigestOf(t *testing.T) {
	zip := []byte("the code version 7 runs")
	d := artifact.DigestOf(zip)
	key := artifact.Key("releases/shop", d)
	w := []retention.Wanted{{Key: key, CodeSha256: d.CodeSha256, Versions: []string{"shop-api-prod:7"}}}
	for _, tc := range []struct {
		name                string
		body                []byte
		size                int64 // 0: the body's
		wantS3, wantUnverif string
		wantGets            int
	}{
		{name: "hashed, matches", body: zip, wantGets: 1},
		{name: "hashed, differs", body: []byte("the code version 8 runs"), wantS3: "do not match", wantGets: 1},
		{name: "too large to hash", body: zip, size: retention.HashAtMost + 1, wantUnverif: "larger than 50.0 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &bucketFake{objects: map[string][]byte{key: tc.body}, sizes: map[string]int64{}}
			if tc.size > 0 {
				b.sizes[key] = tc.size
			}
			k := &artifactKit{s3: b, bucket: "shop-artifacts", prefix: "releases/shop"}
			states, err := k.check(context.Background(), w, false, true)
			if err != nil {
				t.Fatal(err)
			}
			st := states[0]
			if (tc.wantS3 == "") != (st.S3 == "") || !strings.Contains(st.S3, tc.wantS3) ||
				(tc.wantUnverif == "") != (st.Unverified == "") || !strings.Contains(st.Unverified, tc.wantUnverif) || b.gets != tc.wantGets {
				t.Fatalf("check: S3 %q, unverified %q, %d gets; want %q, %q, %d", st.S3, st.Unverified, b.gets, tc.wantS3, tc.wantUnverif, tc.wantGets)
			}
		})
	}
}

func (b *bucketFake) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	body, _ := io.ReadAll(in.Body)
	b.objects[aws.ToString(in.Key)] = body
	b.puts++
	return &s3.PutObjectOutput{}, nil
}

// codeless is a Lambda whose GetFunction cannot give a version's code.
type codeless struct{ lambdafleet.LambdaAPI }

func (codeless) GetFunction(context.Context, *lambda.GetFunctionInput, ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error) {
	return nil, errors.New("AccessDeniedException")
}

func TestCheckRollbackArtifacts(t *testing.T) {
	zip := []byte("the code version 7 runs")
	d := artifact.DigestOf(zip)
	key := artifact.Key("releases/shop", d)
	for _, tc := range []struct {
		name             string
		inS3, inCache    bool
		allow            bool
		wantErr, wantLog string
		wantPuts         int
	}{
		{name: "present", inS3: true},
		{name: "restored from the cache", inCache: true, wantLog: "Restored s3://shop-artifacts/" + key + " from the local cache", wantPuts: 1},
		{name: "unrestorable", wantErr: "nothing was changed: a rollback of this release could not run: s3://shop-artifacts/" + key},
		{name: "unrestorable, allowed", allow: true, wantLog: "Deploying anyway (--allow-unrestorable)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bucket := &bucketFake{objects: map[string][]byte{}}
			if tc.inS3 {
				bucket.objects[key] = zip
			}
			cache := artifact.Cache{Dir: t.TempDir()}
			if tc.inCache {
				if _, err := cache.Put(zip); err != nil {
					t.Fatal(err)
				}
			}
			p := &prepared{
				m:     &manifest.Manifest{Service: "shop", Artifacts: manifest.Artifacts{Bucket: "shop-artifacts", Prefix: "releases/shop", Cache: cache.Dir}},
				fleet: &lambdafleet.Fleet{S3: bucket, Lambda: codeless{}},
				rows: []release.PlanRow{
					{Target: release.Target{FunctionName: "shop-api-prod"}, Change: true,
						Current: release.Current{Exists: true, AliasExists: true, AliasVersion: "7", AliasCodeSha256: d.CodeSha256}},
					{Target: release.Target{FunctionName: "shop-new-prod"}, Change: true, Current: release.Current{Exists: true}}, // no alias: nothing to roll back to
				},
			}
			var log bytes.Buffer
			err := checkRollbackArtifacts(context.Background(), p, &log, tc.allow)
			var ue usageError
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.wantErr != "" && (err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want bad input saying %q", err, tc.wantErr)
			}
			if !strings.Contains(log.String(), tc.wantLog) {
				t.Errorf("log %q, want %q", log.String(), tc.wantLog)
			}
			if bucket.puts != tc.wantPuts {
				t.Errorf("%d uploads, want %d", bucket.puts, tc.wantPuts)
			}
			if tc.wantPuts > 0 && !bytes.Equal(bucket.objects[key], zip) {
				t.Error("the restored object differs")
			}
		})
	}
}
