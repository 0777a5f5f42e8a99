package deploy

import (
	"strconv"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/aviary-deploy/aviary/inventory"
	"github.com/aviary-deploy/aviary/retention"
)

const testPrefix = "releases/shop"

// tfLifecycleRules are the module's lifecycle rules as S3 would report them (inventory's
// form) for artifact_prefix testPrefix, with noncurrent_version_expiration_days set or not.
func tfLifecycleRules(t *testing.T, noncurrentDays int32) []inventory.LifecycleRule {
	t.Helper()
	lc := block(t, tfBlocks(t, "terraform"), "resource", "aws_s3_bucket_lifecycle_configuration", "artifacts")
	var out []inventory.LifecycleRule
	for _, r := range nested(lc, "rule") {
		lr := inventory.LifecycleRule{ID: str(t, r, "id"), Enabled: str(t, r, "status") == "Enabled"}
		for _, f := range nested(r, "filter") {
			// The filter's prefix is "${local.artifact_prefix}/": the one template the module uses.
			tmpl, ok := f.Body.Attributes["prefix"].Expr.(*hclsyntax.TemplateExpr)
			if !ok || len(tmpl.Parts) != 2 {
				t.Fatalf("rule %s: the filter's prefix is not \"${local.artifact_prefix}/\"", lr.ID)
			}
			lr.Prefix = testPrefix + "/"
		}
		for _, e := range nested(r, "expiration") {
			if a, ok := e.Body.Attributes["days"]; ok {
				n, _ := strconv.Atoi(exprValue(t, a.Expr))
				lr.ExpirationDays = int32(n)
			}
			lr.ExpiredObjectDeleteMarker = str(t, e, "expired_object_delete_marker") == "true"
		}
		for _, tr := range nested(r, "transition") {
			lr.Transitions = append(lr.Transitions, inventory.Transition{StorageClass: str(t, tr, "storage_class")})
		}
		for _, d := range nested(r, "dynamic") {
			if d.Labels[0] == "noncurrent_version_expiration" && noncurrentDays > 0 {
				lr.NoncurrentExpires, lr.NoncurrentExpirationDays = true, noncurrentDays
			}
		}
		out = append(out, lr)
	}
	return out
}

// aviary doctor reads the module's lifecycle as harmless, and warns once noncurrent versions
// are set to expire (which shows the rules are read as doctor reads them).
func TestTerraformLifecycleDoctorFindsNothing(t *testing.T) {
	if risks := retention.LifecycleRisks(tfLifecycleRules(t, 0), testPrefix, true, nil); len(risks) != 0 {
		t.Fatalf("aviary doctor flags the module's lifecycle: %+v", risks)
	}
	if risks := retention.LifecycleRisks(tfLifecycleRules(t, 30), testPrefix, true, nil); len(risks) != 1 || risks[0].Severity != retention.Warning {
		t.Fatalf("with noncurrent_version_expiration_days, doctor should warn once: %+v", risks)
	}
}

func TestCloudFormationLifecycleDoctorFindsNothing(t *testing.T) {
	b, err := template(t, map[string]any{"ArtifactPrefix": testPrefix}).GetS3BucketWithName("ArtifactBucket")
	if err != nil {
		t.Fatal(err)
	}
	var rules []inventory.LifecycleRule
	for _, r := range b.LifecycleConfiguration.Rules {
		lr := inventory.LifecycleRule{Enabled: r.Status == "Enabled"}
		if r.Id != nil {
			lr.ID = *r.Id
		}
		if r.Prefix != nil {
			lr.Prefix = *r.Prefix
		}
		if r.ExpirationInDays != nil {
			lr.ExpirationDays = int32(*r.ExpirationInDays)
		}
		if r.ExpiredObjectDeleteMarker != nil {
			lr.ExpiredObjectDeleteMarker = *r.ExpiredObjectDeleteMarker
		}
		if r.NoncurrentVersionExpiration != nil || r.NoncurrentVersionExpirationInDays != nil {
			lr.NoncurrentExpires = true
		}
		for _, tr := range r.Transitions {
			lr.Transitions = append(lr.Transitions, inventory.Transition{StorageClass: tr.StorageClass})
		}
		rules = append(rules, lr)
	}
	if len(rules) == 0 || rules[0].Prefix != testPrefix+"/" {
		t.Fatalf("the template's rules are not under the artifact prefix: %+v", rules)
	}
	if risks := retention.LifecycleRisks(rules, testPrefix, true, nil); len(risks) != 0 {
		t.Fatalf("aviary doctor flags the template's lifecycle: %+v", risks)
	}
}
