package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// retention is the retention chapter: what the seeds' teams lost, rehearsed. Six releases of
// staging; a CloudFront distribution using an old version (Lambda@Edge); `aviary prune` deleting
// only what nothing needs. Then seed 000: a lifecycle rule added to save money would expire the
// artifacts a rollback needs — doctor names it; a month later it has expired them — doctor names
// the keys; `doctor --restore` puts them back byte for byte; the rule is fixed and a rollback runs.
func (r *rehearsal) retention() error {
	ctx, say, aviary := r.ctx, r.say, r.aviary
	bucket, prefix := r.m.Artifacts.Bucket, r.m.Artifacts.Prefix
	say("Six releases of staging (all at once): every function gets versions 1 to 6")
	// Each function's build differs (STAMP_<function>), so that each has its own artifacts.
	stamps := map[string]string{}
	for _, fn := range r.m.Functions {
		stamps["STAMP_"+fn.Name] = "-" + fn.Name
	}
	for i := 1; i <= 6; i++ {
		args := []string{"deploy", "-e", "staging"}
		if i > 1 {
			args = append(args, "--quiet")
		}
		env := map[string]string{"STAMP": fmt.Sprint(i)}
		maps.Copy(env, stamps)
		if code := aviary(env, args...); code != ExitOK {
			return fmt.Errorf("demo: release %d exited %d", i, code)
		}
	}

	api := r.m.FunctionName(r.env, r.m.Functions[0].Name)
	edge := fmt.Sprintf("arn:aws:lambda:%s:000000000000:function:%s:2", r.srv.Region, api)
	say("A CloudFront distribution runs %s version 2 at the edge (Lambda@Edge, viewer-request): seed 003's deletion would have broken it", api)
	cf := cloudfront.NewFromConfig(r.cfg)
	dist, err := cf.CreateDistribution(ctx, &cloudfront.CreateDistributionInput{DistributionConfig: &cftypes.DistributionConfig{
		CallerReference: aws.String("demo-site"), Comment: aws.String("shop site"), Enabled: aws.Bool(true),
		Origins: &cftypes.Origins{Quantity: aws.Int32(1), Items: []cftypes.Origin{{Id: aws.String("site"), DomainName: aws.String("shop.example.com"),
			CustomOriginConfig: &cftypes.CustomOriginConfig{HTTPPort: aws.Int32(80), HTTPSPort: aws.Int32(443), OriginProtocolPolicy: cftypes.OriginProtocolPolicyHttpsOnly}}}},
		DefaultCacheBehavior: &cftypes.DefaultCacheBehavior{TargetOriginId: aws.String("site"), ViewerProtocolPolicy: cftypes.ViewerProtocolPolicyRedirectToHttps,
			LambdaFunctionAssociations: &cftypes.LambdaFunctionAssociations{Quantity: aws.Int32(1), Items: []cftypes.LambdaFunctionAssociation{
				{EventType: cftypes.EventTypeViewerRequest, LambdaFunctionARN: aws.String(edge)}}}},
	}})
	if err != nil {
		return fmt.Errorf("demo: create the distribution: %w", err)
	}
	fmt.Fprintf(r.out, "  distribution %s associates %s\n", aws.ToString(dist.Distribution.Id), edge)

	say("Prune keeps what anything needs: the aliases, the last 3 promoted releases (retain: {releases: 3}), CloudFront's version, the newest 2; the rest goes")
	aviary(nil, "prune", "-e", "staging", "--keep", "2", "--dry-run")
	if code := aviary(nil, "prune", "-e", "staging", "--keep", "2"); code != ExitOK {
		return fmt.Errorf("demo: prune exited %d", code)
	}

	say("Seed 000: to save money, someone adds a lifecycle rule expiring everything under %s/ after 30 days", prefix)
	sc := s3.NewFromConfig(r.cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := sc.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: aws.String(bucket),
		LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: []s3types.LifecycleRule{{
			ID: aws.String("expire-old-builds"), Status: s3types.ExpirationStatusEnabled,
			Filter:     &s3types.LifecycleRuleFilter{Prefix: aws.String(strings.SplitN(prefix, "/", 2)[0] + "/")},
			Expiration: &s3types.LifecycleExpiration{Days: aws.Int32(30)}}}}}); err != nil {
		return fmt.Errorf("demo: put the lifecycle rule: %w", err)
	}
	fmt.Fprintf(r.out, "  (Expiration after 30 days, prefix %s/)\n", strings.SplitN(prefix, "/", 2)[0])
	say("aviary doctor proves every rollback can still run; it fails (exit %d) and names the rule", ExitNotReady)
	if code := aviary(nil, "doctor", "-e", "staging"); code != ExitNotReady {
		return fmt.Errorf("demo: doctor with an expiring rule exited %d; want %d", code, ExitNotReady)
	}

	say("Nobody ran it. Thirty-one days later S3 has applied the rule (the sandbox applies it now)")
	expired, err := r.ageBucket(bucket, 31)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "  S3 expired %d objects under %s/\n", expired, prefix)
	say("doctor names every missing key a rollback needs")
	if code := aviary(nil, "doctor", "-e", "staging"); code != ExitNotReady {
		return fmt.Errorf("demo: doctor with expired artifacts exited %d; want %d", code, ExitNotReady)
	}

	say("doctor --restore puts them back from the local cache (or the deployed versions' own code), checked against their SHA-256")
	if code := aviary(nil, "doctor", "-e", "staging", "--restore"); code != ExitNotReady {
		// The rule is still there: the artifacts are back, the risk is not gone.
		return fmt.Errorf("demo: doctor --restore exited %d; want %d while the rule remains", code, ExitNotReady)
	}
	n, err := verifyArtifacts(ctx, sc, bucket, prefix)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "  every one of the %d artifacts in s3://%s/%s/ is byte-identical to the SHA-256 its key names\n", n, bucket, prefix)

	say("The fix: the rule goes (or excludes the artifacts' prefix); doctor passes")
	if _, err := sc.DeleteBucketLifecycle(ctx, &s3.DeleteBucketLifecycleInput{Bucket: aws.String(bucket)}); err != nil {
		return err
	}
	if code := aviary(nil, "doctor", "-e", "staging"); code != ExitOK {
		return fmt.Errorf("demo: doctor after the fix exited %d", code)
	}

	say("And a rollback runs: release 6 goes back to release 5's versions")
	if code := aviary(nil, "rollback", "-e", "staging", "--reason", "rehearsing seed 000"); code != ExitOK {
		return fmt.Errorf("demo: the rollback exited %d", code)
	}
	return nil
}

// verifyArtifacts reads every artifact under the prefix and checks its bytes against the SHA-256
// its key names.
func verifyArtifacts(ctx context.Context, sc *s3.Client, bucket, prefix string) (int, error) {
	n := 0
	p := s3.NewListObjectsV2Paginator(sc, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix + "/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return n, err
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			out, err := sc.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			if err != nil {
				return n, fmt.Errorf("demo: read s3://%s/%s: %w", bucket, key, err)
			}
			var b bytes.Buffer
			_, err = io.Copy(&b, out.Body)
			out.Body.Close()
			if err != nil {
				return n, err
			}
			sum := sha256.Sum256(b.Bytes())
			if want := strings.TrimSuffix(path.Base(key), ".zip"); hex.EncodeToString(sum[:]) != want {
				return n, fmt.Errorf("demo: s3://%s/%s holds other bytes (SHA-256 %x)", bucket, key, sum)
			}
			n++
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("demo: no artifact under s3://%s/%s/ after the restore", bucket, prefix)
	}
	return n, nil
}
