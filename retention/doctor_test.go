package retention_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/inventory"
	"github.com/aviary-deploy/aviary/retention"
)

// code is a fake zip's CodeSha256 (base64) and its key's hex.
func code(s string) (b64, hexed string) {
	sum := sha256.Sum256([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:]), hex.EncodeToString(sum[:])
}

func TestKeyOf(t *testing.T) {
	b, h := code("zip")
	for _, tc := range []struct{ prefix, want string }{
		{"", h + ".zip"}, {"releases/shop", "releases/shop/" + h + ".zip"}, {"/releases/shop/", "releases/shop/" + h + ".zip"},
	} {
		got, err := retention.KeyOf(tc.prefix, b)
		if err != nil || got != tc.want {
			t.Errorf("KeyOf(%q) = %q, %v; want %q", tc.prefix, got, err, tc.want)
		}
		if !retention.IsArtifactKey(tc.prefix, got) {
			t.Errorf("IsArtifactKey(%q, %q) = false", tc.prefix, got)
		}
	}
	if _, err := retention.KeyOf("p", "not-base64!"); err == nil {
		t.Error("KeyOf accepted a bad CodeSha256")
	}
	for _, k := range []string{"releases/shop/notes.txt", "releases/shop/sub/" + h + ".zip", "releases/shop/" + strings.ToUpper(h) + ".zip", "releases/" + h + ".zip"} {
		if retention.IsArtifactKey("releases/shop", k) {
			t.Errorf("IsArtifactKey(%q) = true", k)
		}
	}
}

func TestRollbackNeeds(t *testing.T) {
	c1, h1 := code("v1")
	c2, h2 := code("v2")
	c3, _ := code("v3")
	fn := inventory.Function{Name: "shop-api", Versions: []inventory.Version{
		{Number: "1", CodeSha256: c1, CodeSize: 10}, {Number: "2", CodeSha256: c2, CodeSize: 20}, {Number: "3", CodeSha256: c3}, {Number: "4", CodeSha256: c2, CodeSize: 20},
	}, Aliases: []inventory.Alias{{Name: "live", Version: "4", Weights: map[string]float64{"2": 0.1}}, {Name: "beta", Version: "$LATEST"}}}
	relNeeds := map[string]map[string][]retention.Need{"shop-api": {"1": {{Kind: retention.ByRelease, By: "r1 (promoted, previous)"}}, "9": {{Kind: retention.ByRelease, By: "r0"}}}}
	wanted, gone, err := retention.RollbackNeeds("p", []inventory.Function{fn, {Name: "gone", Missing: true}}, relNeeds)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, w := range wanted {
		got[w.Key] = w.Versions
	}
	want := map[string][]string{"p/" + h1 + ".zip": {"shop-api:1"}, "p/" + h2 + ".zip": {"shop-api:2", "shop-api:4"}}
	if len(got) != len(want) {
		t.Fatalf("wanted %v, want %v", got, want)
	}
	for k, v := range want {
		if strings.Join(got[k], ",") != strings.Join(v, ",") {
			t.Errorf("%s: versions %v, want %v", k, got[k], v)
		}
	}
	if len(gone) != 1 || gone[0].Version != "9" {
		t.Errorf("gone = %+v, want version 9", gone)
	}
}

func TestObjectProblem(t *testing.T) {
	c, _ := code("v")
	other, _ := code("w")
	w := retention.Wanted{Key: "k", CodeSha256: c, CodeSize: 10}
	for _, tc := range []struct {
		name  string
		obj   inventory.Object
		found bool
		want  string // a substring; "" for no problem
	}{
		{"missing", inventory.Object{}, false, "missing"},
		{"fine", inventory.Object{Size: 10, StorageClass: "STANDARD"}, true, ""},
		{"fine with checksum", inventory.Object{Size: 10, ChecksumSHA256: c}, true, ""},
		{"wrong size", inventory.Object{Size: 11}, true, "size is 11"},
		{"wrong digest", inventory.Object{Size: 10, ChecksumSHA256: other}, true, "records SHA-256"},
		{"composite checksum is not compared", inventory.Object{Size: 10, ChecksumSHA256: "abc-3"}, true, ""},
		{"archived", inventory.Object{Size: 10, StorageClass: "DEEP_ARCHIVE"}, true, "restored"},
		{"instant retrieval is fine", inventory.Object{Size: 10, StorageClass: "GLACIER_IR"}, true, ""},
		{"intelligent tiering, archive access tier", inventory.Object{Size: 10, StorageClass: "INTELLIGENT_TIERING", ArchiveStatus: "ARCHIVE_ACCESS"}, true, "ARCHIVE_ACCESS tier"},
		{"intelligent tiering, deep archive access tier", inventory.Object{Size: 10, StorageClass: "INTELLIGENT_TIERING", ArchiveStatus: "DEEP_ARCHIVE_ACCESS"}, true, "restored"},
		{"intelligent tiering, instant tiers are fine", inventory.Object{Size: 10, StorageClass: "INTELLIGENT_TIERING"}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := retention.ObjectProblem(w, tc.obj, tc.found)
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("ObjectProblem = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLifecycleRisks(t *testing.T) {
	date := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		rule      inventory.LifecycleRule
		versioned bool
		want      retention.Severity // "" for no risk
		says      string
	}{
		{"expiration on the whole bucket", inventory.LifecycleRule{ID: "tidy", Enabled: true, ExpirationDays: 30}, false, retention.Blocking, "expires (deletes) artifacts 30 days"},
		{"expiration on a parent prefix", inventory.LifecycleRule{ID: "r", Enabled: true, Prefix: "releases/", ExpirationDays: 30}, false, retention.Blocking, "30 days"},
		{"expiration on the prefix itself without its slash", inventory.LifecycleRule{ID: "r", Enabled: true, Prefix: "releases/sh", ExpirationDays: 30}, false, retention.Blocking, ""},
		{"expiration by date", inventory.LifecycleRule{ID: "r", Enabled: true, ExpirationDate: &date}, false, retention.Blocking, "from 2027-01-01"},
		{"expiration under the prefix", inventory.LifecycleRule{ID: "r", Enabled: true, Prefix: "releases/shop/ab", ExpirationDays: 1}, false, retention.Blocking, `start with "releases/shop/ab"`},
		{"another prefix", inventory.LifecycleRule{ID: "logs", Enabled: true, Prefix: "logs/", ExpirationDays: 1}, false, "", ""},
		{"disabled", inventory.LifecycleRule{ID: "r", ExpirationDays: 1}, false, "", ""},
		{"delete markers only", inventory.LifecycleRule{ID: "r", Enabled: true, ExpiredObjectDeleteMarker: true}, true, "", ""},
		{"to deep archive", inventory.LifecycleRule{ID: "cold", Enabled: true, Transitions: []inventory.Transition{{Days: 90, StorageClass: "DEEP_ARCHIVE"}}}, false, retention.Blocking, "DEEP_ARCHIVE 90 days"},
		{"to glacier instant retrieval", inventory.LifecycleRule{ID: "ir", Enabled: true, Transitions: []inventory.Transition{{Days: 90, StorageClass: "GLACIER_IR"}}}, false, "", ""},
		{"noncurrent expiry, unversioned", inventory.LifecycleRule{ID: "nc", Enabled: true, NoncurrentExpires: true, NoncurrentExpirationDays: 7}, false, "", ""},
		{"noncurrent expiry, versioned", inventory.LifecycleRule{ID: "nc", Enabled: true, NoncurrentExpires: true, NoncurrentExpirationDays: 7}, true, retention.Warning, "recovered only until then"},
		{"noncurrent to glacier, versioned", inventory.LifecycleRule{ID: "nc", Enabled: true, NoncurrentTransitions: []inventory.Transition{{Days: 7, StorageClass: "GLACIER"}}}, true, retention.Warning, "restore first"},
		{"tag filter", inventory.LifecycleRule{ID: "t", Enabled: true, Tags: map[string]string{"tmp": "1"}, ExpirationDays: 1}, false, retention.Warning, "tagged tmp=1"},
		{"size filter matching some", inventory.LifecycleRule{ID: "big", Enabled: true, SizeGreaterThan: 150, ExpirationDays: 1}, false, retention.Blocking, "1 of the 2 artifacts"},
		{"size filter matching none", inventory.LifecycleRule{ID: "huge", Enabled: true, SizeGreaterThan: 10000, ExpirationDays: 1}, false, retention.Warning, "none of the 2 artifacts"},
		{"size window", inventory.LifecycleRule{ID: "w", Enabled: true, SizeGreaterThan: 50, SizeLessThan: 150, ExpirationDays: 1}, false, retention.Blocking, "larger than 50 and smaller than 150"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := retention.LifecycleRisks([]inventory.LifecycleRule{tc.rule}, "releases/shop", tc.versioned, []int64{100, 200})
			if tc.want == "" {
				if len(got) != 0 {
					t.Errorf("risks %+v, want none", got)
				}
				return
			}
			if len(got) != 1 || got[0].Severity != tc.want || got[0].Rule != tc.rule.ID || !strings.Contains(got[0].Does, tc.says) {
				t.Errorf("risks %+v, want one %s from %s saying %q", got, tc.want, tc.rule.ID, tc.says)
			}
		})
	}
}

func TestCodeStorageProblem(t *testing.T) {
	for _, tc := range []struct {
		used, limit int64
		want        retention.Severity
	}{{10, 100, retention.Info}, {80, 100, retention.Warning}, {100, 100, retention.Blocking}, {5, 0, retention.Info}} {
		if got, _ := retention.CodeStorageProblem(inventory.CodeStorage{Used: tc.used, Limit: tc.limit}); got != tc.want {
			t.Errorf("%d of %d: %s, want %s", tc.used, tc.limit, got, tc.want)
		}
	}
}

func TestRuleCanMatch(t *testing.T) {
	h := strings.Repeat("ab", 32) // 64 hex digits
	for _, tc := range []struct {
		rule, prefix string
		want         bool
	}{
		{"", "releases/shop/", true},
		{"releases/", "releases/shop/", true},
		{"releases/shop/", "releases/shop/", true},
		{"releases/sh", "releases/shop/", true},
		{"releases/shop/ab", "releases/shop/", true},
		{"releases/shop/0", "releases/shop/", true},
		{"releases/shop/" + h, "releases/shop/", true},
		{"releases/shop/" + h + ".", "releases/shop/", true},
		{"releases/shop/" + h + ".zip", "releases/shop/", true},
		{"releases/shop/" + h + ".zipx", "releases/shop/", false},
		{"releases/shop/" + h + "a", "releases/shop/", false},
		{"releases/shop/" + h + ".tar", "releases/shop/", false},
		{"releases/shop/AB", "releases/shop/", false},
		{"releases/shop/logs/", "releases/shop/", false},
		{"releases/shop/x", "releases/shop/", false},
		{"releases/shopping/", "releases/shop/", false},
		{"logs/", "releases/shop/", false},
		{"logs/", "", false},
		{"ab", "", true},
		{"", "", true},
	} {
		if got := retention.RuleCanMatch(tc.rule, tc.prefix); got != tc.want {
			t.Errorf("RuleCanMatch(%q, %q)=%v, want %v", tc.rule, tc.prefix, got, tc.want)
		}
	}
	// LifecycleRisks ignores a rule that cannot match an artifact.
	expire := func(prefix string) inventory.LifecycleRule {
		return inventory.LifecycleRule{ID: prefix, Enabled: true, Prefix: prefix, ExpirationDays: 1}
	}
	risks := retention.LifecycleRisks([]inventory.LifecycleRule{expire("releases/shop/tmp/"), expire("releases/shop/ab")}, "releases/shop", false, nil)
	if len(risks) != 1 || risks[0].Rule != "releases/shop/ab" || risks[0].Severity != retention.Blocking {
		t.Errorf("LifecycleRisks = %+v, want only releases/shop/ab, blocking", risks)
	}
}
