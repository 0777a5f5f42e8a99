package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/aviary-deploy/aviary/internal/cli"
	"github.com/aviary-deploy/aviary/release"
)

// gc deletes only what nothing reaches and what is older than the grace period: staging and
// production share the bucket, and a gc run for production keeps staging's artifacts; a dry run
// deletes nothing; an unreadable bucket stops gc with nothing deleted.
func TestGCDeletesOnlyUnreachableOldArtifacts(t *testing.T) {
	f, s3c := retentionFleet(t)
	ctx := context.Background()

	// Staging shares the bucket and prefix, and runs code production never ran.
	f.appendManifest("\n  staging:\n    function_name: \"{service}-{function}-staging\"\n    strategy:\n" + quickCanary + "\n")
	for _, n := range f.names {
		f.stamp(n, "s0")
		if _, err := f.lambda.CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("shop-" + n + "-staging"), Runtime: lambdatypes.RuntimeProvidedal2023,
			Handler: aws.String("bootstrap"), Role: aws.String("arn:aws:iam::000000000000:role/shop"), Code: &lambdatypes.FunctionCode{ZipFile: f.zip(n)}}); err != nil {
			t.Fatal(err)
		}
	}
	f.stampAll("staging-1")
	if code, out, errs := f.aviary("deploy", "-e", "staging", "--api-rate", "200"); code != 0 {
		t.Fatalf("deploy staging: exit %d\n%s\n%s", code, out, errs)
	}
	stagingKey, _ := f.keyOf(f.names[0], "staging-1")
	prod1, _ := f.keyOf(f.names[0], "1")
	prod2, _ := f.keyOf(f.names[0], "2")

	// An orphan: an artifact nothing ever deployed; and someone else's file under the prefix.
	orphanBody := []byte("a build nobody deployed")
	sum := sha256.Sum256(orphanBody)
	orphan := "releases/shop/" + hex.EncodeToString(sum[:]) + ".zip"
	for k, b := range map[string][]byte{orphan: orphanBody, "releases/shop/NOTES.txt": []byte("keep me")} {
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("shop-artifacts"), Key: aws.String(k), Body: bytes.NewReader(b)}); err != nil {
			t.Fatal(err)
		}
	}
	exists := func(key string) bool {
		_, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("shop-artifacts"), Key: aws.String(key)})
		return err == nil
	}
	deletes := func() int {
		n := 0
		for _, r := range f.srv.Requests() {
			if r.Operation == "DeleteObject" || r.Operation == "DeleteObjects" {
				n++
			}
		}
		return n
	}

	for _, tc := range []struct {
		name      string
		args      []string
		code      int
		says      string
		gone      []string // deleted by this run
		deletions int      // DeleteObject calls
	}{
		{"grace keeps the young orphan", []string{"--grace", "7d"}, 0, "Deleted 0 artifacts", nil, 0},
		{"a dry run deletes nothing", []string{"--grace", "0s", "--dry-run"}, 0, "would delete   " + orphan, nil, 0},
		{"an unknown environment", []string{"--grace", "0s", "-e", "nowhere"}, cli.ExitBadInput, "", nil, 0},
		{"a bad grace", []string{"--grace", "7 days"}, cli.ExitBadInput, "", nil, 0},
		{"the orphan goes, everything reachable stays", []string{"--grace", "0s"}, 0, "Deleted 1 artifact", []string{orphan}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.srv.ResetRequests()
			args := append([]string{"gc", "-e", "production"}, tc.args...)
			code, out, errs := f.aviary(args...)
			if code != tc.code || !strings.Contains(out, tc.says) {
				t.Fatalf("gc %v: exit %d, want %d saying %q\n%s\n%s", tc.args, code, tc.code, tc.says, out, errs)
			}
			if got := deletes(); got != tc.deletions {
				t.Errorf("gc %v made %d deletions, want %d", tc.args, got, tc.deletions)
			}
			for _, k := range tc.gone {
				if exists(k) {
					t.Errorf("%s is still there", k)
				}
			}
		})
	}
	for name, k := range map[string]string{"staging's": stagingKey, "production's current": prod2, "production's previous": prod1, "someone else's": "releases/shop/NOTES.txt"} {
		if !exists(k) {
			t.Errorf("gc deleted %s artifact %s", name, k)
		}
	}

	// JSON: nothing left to delete, every kept key says why.
	code, out, errs := f.aviary("gc", "-e", "production", "--grace", "0s", "-o", "json")
	var doc struct {
		Schema  string
		Deleted []any
		Kept    []struct {
			Key   string
			Needs []struct{ Kind, By string }
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil || doc.Schema != "aviary/v1" || len(doc.Deleted) != 0 || len(doc.Kept) != 3 {
		t.Fatalf("gc -o json: exit %d\n%s\n%s", code, out, errs)
	}
	for _, k := range doc.Kept {
		if len(k.Needs) == 0 {
			t.Errorf("%s kept for no reason", k.Key)
		}
	}

	// A versioned bucket: the deletion leaves a noncurrent version, and gc says so.
	if _, err := s3c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("shop-artifacts"),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("shop-artifacts"), Key: aws.String(orphan), Body: bytes.NewReader(orphanBody)}); err != nil {
		t.Fatal(err)
	}
	code, out, errs = f.aviary("gc", "-e", "production", "--grace", "0s")
	if code != 0 || !strings.Contains(out, "Deleted 1 artifact") || !strings.Contains(out, "noncurrent version, still billed") {
		t.Fatalf("gc in a versioned bucket: exit %d\n%s\n%s", code, out, errs)
	}
	vs, err := s3c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("shop-artifacts"), Prefix: aws.String(orphan)})
	if err != nil || len(vs.Versions) == 0 || len(vs.DeleteMarkers) != 1 {
		t.Errorf("after gc in a versioned bucket: %v, %d versions, %d markers (want the noncurrent version kept)", err, len(vs.Versions), len(vs.DeleteMarkers))
	}

	// A bucket that cannot be read: exit 2, nothing deleted.
	f.replaceInManifest("bucket: shop-artifacts", "bucket: no-such-bucket")
	f.srv.ResetRequests()
	code, out, errs = f.aviary("gc", "-e", "production", "--grace", "0s")
	if code != cli.ExitBadInput || !strings.Contains(errs, "nothing was deleted") || !strings.Contains(errs, "no-such-bucket") || deletes() != 0 {
		t.Errorf("gc on a missing bucket: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs = f.aviary("doctor", "-e", "production"); code != cli.ExitBadInput || !strings.Contains(errs, "no-such-bucket") {
		t.Errorf("doctor on a missing bucket: exit %d\n%s\n%s", code, out, errs)
	}
}

// Another service whose releases recorded the same bucket and prefix: gc cannot read its
// functions, so it refuses and deletes nothing, naming the service; with its own prefix, gc runs.
func TestGCRefusesAPrefixSharedWithAnotherService(t *testing.T) {
	f, s3c := retentionFleet(t)
	ctx := context.Background()
	orphanBody := []byte("cart's build, live in cart's functions")
	sum := sha256.Sum256(orphanBody)
	cartKey := "releases/shop/" + hex.EncodeToString(sum[:]) + ".zip"
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("shop-artifacts"), Key: aws.String(cartKey), Body: bytes.NewReader(orphanBody)}); err != nil {
		t.Fatal(err)
	}
	st := f.openStore()
	cart := &release.Release{ID: "cart-1", Service: "cart", Environment: "production", Alias: "live", Phase: release.Promoted,
		Artifacts: release.Artifacts{Bucket: "shop-artifacts", Prefix: "releases/shop/"}, CreatedAt: time.Now(),
		Functions: []release.Function{{Name: "api", FunctionName: "cart-api-prod", ArtifactKey: cartKey}}}
	if err := st.CreateRelease(ctx, cart); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--grace", "0s"}, {"--grace", "0s", "--dry-run"}} {
		f.srv.ResetRequests()
		code, out, errs := f.aviary(append([]string{"gc", "-e", "production"}, args...)...)
		if code != cli.ExitBadInput || !strings.Contains(errs, "nothing was deleted") || !strings.Contains(errs, "cart") || !strings.Contains(errs, "own artifacts prefix") {
			t.Errorf("gc %v with a prefix shared with cart: exit %d\n%s\n%s", args, code, out, errs)
		}
		for _, r := range f.srv.Requests() {
			if r.Operation == "DeleteObject" || r.Operation == "DeleteObjects" {
				t.Errorf("gc %v deleted %v", args, r)
			}
		}
	}
	if _, err := s3c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("shop-artifacts"), Key: aws.String(cartKey)}); err != nil {
		t.Fatalf("cart's artifact is gone: %v", err)
	}

	// Any cart release naming the prefix keeps gc refusing (cart's functions may still run that
	// code); shop moving to a prefix of its own lets gc run there.
	f.replaceInManifest("prefix: releases/shop", "prefix: releases/shop-own")
	if code, out, errs := f.aviary("gc", "-e", "production", "--grace", "0s"); code != 0 {
		t.Errorf("gc under a prefix of shop's own: exit %d\n%s\n%s", code, out, errs)
	}
}

// A function Lambda says does not exist, while a release names it: gc cannot tell it from one it
// may not see, so it refuses naming it; --allow-missing goes on once it really was deleted.
func TestGCRefusesAMissingFunctionAReleaseNames(t *testing.T) {
	f, _ := retentionFleet(t)
	ctx := context.Background()
	if _, err := f.lambda.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(f.fn(f.names[0]))}); err != nil {
		t.Fatal(err)
	}
	f.srv.ResetRequests()
	code, out, errs := f.aviary("gc", "-e", "production", "--grace", "0s")
	if code != cli.ExitBadInput || !strings.Contains(errs, "nothing was deleted") || !strings.Contains(errs, f.fn(f.names[0])) || !strings.Contains(errs, "--allow-missing") {
		t.Fatalf("gc with a deleted function: exit %d, want %d\n%s\n%s", code, cli.ExitBadInput, out, errs)
	}
	for _, r := range f.srv.Requests() {
		if r.Operation == "DeleteObject" {
			t.Errorf("gc deleted %v", r)
		}
	}
	if code, out, errs := f.aviary("gc", "-e", "production", "--grace", "0s", "--allow-missing"); code != 0 {
		t.Fatalf("gc --allow-missing: exit %d\n%s\n%s", code, out, errs)
	}
}
