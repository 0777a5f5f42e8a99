package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/internal/cli"
	"github.com/aviary-deploy/aviary/sandbox"
	s3sandbox "github.com/aviary-deploy/aviary/sandbox/s3"
)

const quickCanary = "      canary:\n        - weight: 50%\n          bake: 0s"

// retentionFleet is a fleet whose artifacts live under releases/shop, released twice: the
// aliases serve stamp 2, the releases name stamp 1 as what a rollback restores.
func retentionFleet(t *testing.T) (*fleet, *s3.Client) {
	t.Helper()
	f := newFleet(t, 2, quick, quickCanary)
	f.replaceInManifest("bucket: shop-artifacts", "bucket: shop-artifacts\n  prefix: releases/shop")
	for _, s := range []string{"1", "2"} {
		f.stampAll(s)
		if code, out, errs := f.aviary("deploy", "-e", "production", "--api-rate", "200"); code != 0 {
			t.Fatalf("deploy %s: exit %d\n%s\n%s", s, code, out, errs)
		}
	}
	cfg, err := awsconfig.Load(context.Background(), awsconfig.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return f, s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
}

// keyOf is the artifact key of a function's zip at a stamp.
func (f *fleet) keyOf(name, stamp string) (key string, zip []byte) {
	f.stamp(name, stamp)
	zip = f.zip(name)
	sum := sha256.Sum256(zip)
	return "releases/shop/" + hex.EncodeToString(sum[:]) + ".zip", zip
}

func getObject(t *testing.T, c *s3.Client, key string) []byte {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("shop-artifacts"), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	return b
}

// Seed 000's story: doctor passes a healthy environment; fails naming a lifecycle rule that would
// expire the artifacts; names the key an expiry (here a deletion) removed; and --restore puts it
// back byte for byte, from the local cache and, with the cache gone, from the deployed version's
// own code.
func TestDoctorFindsAndRestoresWhatARollbackNeeds(t *testing.T) {
	f, s3c := retentionFleet(t)
	ctx := context.Background()

	code, out, errs := f.aviary("doctor", "-e", "production")
	if code != 0 || !strings.Contains(out, "Ready: every rollback of production can run") || !strings.Contains(out, "2 artifacts") {
		t.Fatalf("doctor on a healthy environment: exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "versioning is off") {
		t.Errorf("doctor does not say the bucket is unversioned:\n%s", out)
	}

	// A lifecycle rule that would expire every artifact.
	if _, err := s3c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: aws.String("shop-artifacts"),
		LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: []s3types.LifecycleRule{
			{ID: aws.String("expire-old-builds"), Status: s3types.ExpirationStatusEnabled, Filter: &s3types.LifecycleRuleFilter{Prefix: aws.String("releases/")},
				Expiration: &s3types.LifecycleExpiration{Days: aws.Int32(30)}},
			{ID: aws.String("logs"), Status: s3types.ExpirationStatusEnabled, Filter: &s3types.LifecycleRuleFilter{Prefix: aws.String("logs/")},
				Expiration: &s3types.LifecycleExpiration{Days: aws.Int32(1)}},
		}}}); err != nil {
		t.Fatal(err)
	}
	code, out, errs = f.aviary("doctor", "-e", "production")
	if code != cli.ExitNotReady || !strings.Contains(out, "rule expire-old-builds: expires (deletes) artifacts 30 days after their upload") || strings.Contains(out, "rule logs") {
		t.Fatalf("doctor with an expiring rule: exit %d\n%s\n%s", code, out, errs)
	}

	// The rule runs (as S3 would 31 days on): every artifact is gone, and doctor names each key.
	days := 31
	rep, err := f.srv.S3.ApplyLifecycle(s3sandbox.LifecycleOptions{Bucket: "shop-artifacts", Days: &days})
	if err != nil || len(rep.Expired) != 2 {
		t.Fatalf("lifecycle apply: %v %+v", err, rep)
	}
	key1, zip1 := f.keyOf("fn00", "1")
	key2, zip2 := f.keyOf("fn00", "2")
	code, out, errs = f.aviary("doctor", "-e", "production")
	for _, k := range []string{key1, key2} {
		if code != cli.ExitNotReady || !strings.Contains(out, "s3://shop-artifacts/"+k+": missing: needed by shop-fn00-prod:") {
			t.Fatalf("doctor after the expiry: exit %d, want %s named\n%s\n%s", code, k, out, errs)
		}
	}
	if code, out, errs = f.aviary("doctor", "-e", "production", "--restore"); code != cli.ExitNotReady || strings.Count(out, "restored from the local cache") != 2 {
		t.Fatalf("doctor --restore with the rule still there (restores, still not ready): exit %d\n%s\n%s", code, out, errs)
	}
	for k, want := range map[string][]byte{key1: zip1, key2: zip2} {
		if !bytes.Equal(getObject(t, s3c, k), want) {
			t.Fatalf("%s restored differs from the original", k)
		}
	}

	// An archive rule: the artifacts go to DEEP_ARCHIVE, which Lambda cannot read until restored.
	if _, err := s3c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: aws.String("shop-artifacts"),
		LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: []s3types.LifecycleRule{
			{ID: aws.String("cold-storage"), Status: s3types.ExpirationStatusEnabled, Filter: &s3types.LifecycleRuleFilter{Prefix: aws.String("")},
				Transitions: []s3types.Transition{{Days: aws.Int32(1), StorageClass: s3types.TransitionStorageClassDeepArchive}}},
		}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.S3.ApplyLifecycle(s3sandbox.LifecycleOptions{Bucket: "shop-artifacts", Days: &days}); err != nil {
		t.Fatal(err)
	}
	code, out, errs = f.aviary("doctor", "-e", "production")
	if code != cli.ExitNotReady || !strings.Contains(out, "rule cold-storage: archives artifacts to DEEP_ARCHIVE") || !strings.Contains(out, "it is in DEEP_ARCHIVE") {
		t.Fatalf("doctor after archiving: exit %d\n%s\n%s", code, out, errs)
	}
	if _, err := s3c.DeleteBucketLifecycle(ctx, &s3.DeleteBucketLifecycleInput{Bucket: aws.String("shop-artifacts")}); err != nil {
		t.Fatal(err)
	}
	if code, out, errs = f.aviary("doctor", "-e", "production", "--restore"); code != 0 {
		t.Fatalf("doctor --restore of archived artifacts: exit %d\n%s\n%s", code, out, errs)
	}

	// Deleted by hand: stamp 1's artifact of fn00 is gone.
	key, zip := f.keyOf("fn00", "1")
	del := func() {
		if _, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("shop-artifacts"), Key: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
	}
	del()
	code, out, errs = f.aviary("doctor", "-e", "production")
	if code != cli.ExitNotReady || !strings.Contains(out, "s3://shop-artifacts/"+key+": missing: needed by shop-fn00-prod:") || !strings.Contains(out, "--restore") {
		t.Fatalf("doctor with a missing artifact: exit %d\n%s\n%s", code, out, errs)
	}

	code, out, errs = f.aviary("doctor", "-e", "production", "--restore")
	if code != 0 || !strings.Contains(out, "restored from the local cache") {
		t.Fatalf("doctor --restore: exit %d\n%s\n%s", code, out, errs)
	}
	if !bytes.Equal(getObject(t, s3c, key), zip) {
		t.Fatal("the artifact restored from the cache differs from the original")
	}

	// Gone again, and from the cache too: the deployed version's code is the last copy.
	del()
	cached := filepath.Join(f.dir, ".aviary", "cache", strings.TrimPrefix(key, "releases/shop/"))
	if err := os.Remove(cached); err != nil {
		t.Fatal(err)
	}
	code, out, errs = f.aviary("doctor", "-e", "production", "--restore", "-o", "json")
	if code != 0 {
		t.Fatalf("doctor --restore without the cache: exit %d\n%s\n%s", code, out, errs)
	}
	var doc struct {
		Schema    string
		Ready     bool
		Artifacts []struct {
			Key, S3, Cache, RestoredFrom, CacheRestoredFrom string
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.Schema != "aviary/v1" || !doc.Ready {
		t.Fatalf("doctor -o json: %v\n%s", err, out)
	}
	found := false
	for _, a := range doc.Artifacts {
		if a.Key == key {
			found = true
			if !strings.Contains(a.RestoredFrom, "deployed code of shop-fn00-prod:") || !strings.Contains(a.CacheRestoredFrom, "GetFunction") {
				t.Errorf("restored %+v", a)
			}
		}
	}
	if !found {
		t.Fatalf("%s not among the artifacts: %s", key, out)
	}
	if !bytes.Equal(getObject(t, s3c, key), zip) {
		t.Fatal("the artifact restored from the deployed code differs from the original")
	}
	if b, err := os.ReadFile(cached); err != nil || !bytes.Equal(b, zip) {
		t.Fatalf("the cache was not refilled byte for byte: %v", err)
	}
	if code, out, errs = f.aviary("doctor", "-e", "production"); code != 0 {
		t.Fatalf("doctor after the restores: exit %d\n%s\n%s", code, out, errs)
	}

	// Overwritten with other bytes of the same size: the SHA-256 S3 recorded gives it away, and
	// --restore puts the right bytes back.
	wrong := bytes.Repeat([]byte{'x'}, len(zip))
	wsum := sha256.Sum256(wrong)
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("shop-artifacts"), Key: aws.String(key), Body: bytes.NewReader(wrong),
		ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256, ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(wsum[:]))}); err != nil {
		t.Fatal(err)
	}
	code, out, errs = f.aviary("doctor", "-e", "production")
	if code != cli.ExitNotReady || !strings.Contains(out, "S3 records SHA-256 "+base64.StdEncoding.EncodeToString(wsum[:])) {
		t.Fatalf("doctor with a corrupt artifact: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs = f.aviary("doctor", "-e", "production", "--restore"); code != 0 || !bytes.Equal(getObject(t, s3c, key), zip) {
		t.Fatalf("doctor --restore of a corrupt artifact: exit %d\n%s\n%s", code, out, errs)
	}

	// Bad input: an unknown environment.
	if code, _, errs = f.aviary("doctor", "-e", "nowhere"); code != cli.ExitBadInput {
		t.Errorf("doctor -e nowhere: exit %d %s", code, errs)
	}
}

// deploy runs doctor's artifact part before its first write: the artifact of the version each
// function would roll back to is restored when it went missing, and when it cannot be restored
// the deploy refuses with exit 2, having changed nothing.
func TestDeployRestoresOrRefusesWhatARollbackNeeds(t *testing.T) {
	f, s3c := retentionFleet(t)
	ctx := context.Background()
	gone := func(stamp string, cacheToo bool) string {
		key, _ := f.keyOf(f.names[0], stamp) // every function's zip is the same at a stamp
		if _, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("shop-artifacts"), Key: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
		if cacheToo {
			if err := os.Remove(filepath.Join(f.dir, ".aviary", "cache", strings.TrimPrefix(key, "releases/shop/"))); err != nil {
				t.Fatal(err)
			}
		}
		return key
	}

	// Restorable: the aliases serve stamp 2, whose artifact is gone from S3 but cached.
	key := gone("2", false)
	f.stampAll("3")
	code, out, errs := f.aviary("deploy", "-e", "production", "--api-rate", "200")
	if code != 0 || !strings.Contains(out, "Restored s3://shop-artifacts/"+key+" from the local cache") {
		t.Fatalf("deploy with a restorable artifact: exit %d\n%s\n%s", code, out, errs)
	}
	_, want := f.keyOf(f.names[0], "2")
	if !bytes.Equal(getObject(t, s3c, key), want) {
		t.Fatal("the restored artifact differs")
	}

	// Unrestorable: stamp 3's artifact is gone from S3 and the cache, and S3 refuses every
	// upload, so not even the deployed code can be put back.
	key = gone("3", true)
	if err := f.srv.SetFaults(sandbox.Faults{Rate: 1, Kinds: []string{"5xx"}, Services: []string{"s3"}, Operations: []string{"PutObject"}}); err != nil {
		t.Fatal(err)
	}
	f.stampAll("4")
	f.srv.ResetRequests()
	code, out, errs = f.aviary("deploy", "-e", "production", "--api-rate", "200")
	if code != cli.ExitBadInput || !strings.Contains(errs, "nothing was changed: a rollback of this release could not run: s3://shop-artifacts/"+key) || !strings.Contains(errs, "--allow-unrestorable") {
		t.Fatalf("deploy with an unrestorable artifact: exit %d\n%s\n%s", code, out, errs)
	}
	if w := writes(f.srv.Requests()); len(w) != 0 {
		t.Errorf("the refused deploy wrote %v", w)
	}
	if v, _ := f.alias(f.names[0]); v != "3" {
		t.Errorf("the alias moved to %s", v)
	}

	// S3 takes uploads again: the deployed code of version 3 is the only copy left.
	f.srv.SetFaults(sandbox.Faults{})
	code, out, errs = f.aviary("deploy", "-e", "production", "--api-rate", "200")
	if code != 0 || !strings.Contains(out, "Restored s3://shop-artifacts/"+key+" from the deployed code of shop-fn0") {
		t.Fatalf("deploy after S3 recovered: exit %d\n%s\n%s", code, out, errs)
	}
	_, want = f.keyOf(f.names[0], "3")
	if !bytes.Equal(getObject(t, s3c, key), want) {
		t.Fatal("the artifact restored from the deployed code differs")
	}
}

// A SQLite store that is not there would open empty, so doctor and gc would know no release:
// both refuse (exit 2) and create no store, a dry run included.
func TestDoctorAndGCRefuseAMissingStore(t *testing.T) {
	f, _ := retentionFleet(t)
	if err := os.Rename(f.store, f.store+".away"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"doctor", "-e", "production"}, "nothing was changed"},
		{[]string{"doctor", "-e", "production", "--restore"}, "nothing was changed"},
		{[]string{"gc", "-e", "production", "--grace", "0s", "--dry-run"}, "nothing was deleted"},
		{[]string{"gc", "-e", "production", "--grace", "0s"}, "nothing was deleted"},
		{[]string{"prune", "-e", "production", "--dry-run"}, "nothing was deleted"},
	} {
		f.srv.ResetRequests()
		code, out, errs := f.aviary(tc.args...)
		if code != cli.ExitBadInput || !strings.Contains(errs, tc.says) || !strings.Contains(errs, "state.db") {
			t.Errorf("%v without its store: exit %d, want %d saying %q\n%s\n%s", tc.args, code, cli.ExitBadInput, tc.says, out, errs)
		}
		if _, err := os.Stat(f.store); !os.IsNotExist(err) {
			t.Fatalf("%v created the store %s (%v)", tc.args, f.store, err)
		}
		for _, r := range f.srv.Requests() {
			if r.Operation == "DeleteObject" || r.Operation == "PutObject" || r.Operation == "DeleteFunction" {
				t.Errorf("%v called %s", tc.args, r.Operation)
			}
		}
	}
}
