package retention_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/inventory"
	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/retention"
)

func TestPlanCollection(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	old, young := now.Add(-30*24*time.Hour), now.Add(-time.Hour)
	key := func(s string) string { _, h := code(s); return "p/" + h + ".zip" }
	sha := func(s string) string { b, _ := code(s); return b }
	obj := func(s string, at time.Time) inventory.Object {
		return inventory.Object{Key: key(s), Size: int64(len(s)) * 100, LastModified: at}
	}
	objects := []inventory.Object{
		obj("prod-v1", old),      // a production version's code
		obj("staging-v1", old),   // a staging version's code: kept although gc runs for production
		obj("latest", old),       // $LATEST's code
		obj("released", old),     // a retained release's artifact, its version pruned
		obj("base", old),         // a retained release's base code
		obj("orphan-old", old),   // nothing: deleted
		obj("orphan-new", young), // nothing, but young: kept by grace
		{Key: "p/README.txt", LastModified: old},
		{Key: "p/" + "0000000000000000000000000000000000000000000000000000000000000000" + ".zip", Size: 7, LastModified: old}, // unreachable, old: deleted
	}
	fns := []inventory.Function{
		{Name: "shop-api-prod", Latest: inventory.Version{Number: "$LATEST", CodeSha256: sha("latest")}, Versions: []inventory.Version{{Number: "1", CodeSha256: sha("prod-v1")}}},
		{Name: "shop-api-staging", Versions: []inventory.Version{{Number: "1", CodeSha256: sha("staging-v1")}}},
		{Name: "shop-gone-prod", Missing: true},
	}
	rels := []*release.Release{{ID: "r1", Phase: release.Promoted, Functions: []release.Function{{FunctionName: "shop-api-prod", ArtifactKey: key("released"), BaseCodeSha256: sha("base")}}}}
	c, err := retention.PlanCollection(retention.Collect{Prefix: "p", Objects: objects, Functions: fns, Releases: rels, Now: now, Grace: 7 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, v := range c.Delete {
		deleted = append(deleted, v.Object.Key)
	}
	want := []string{"p/0000000000000000000000000000000000000000000000000000000000000000.zip", key("orphan-old")}
	if len(deleted) != 2 || !(deleted[0] == want[0] && deleted[1] == want[1] || deleted[0] == want[1] && deleted[1] == want[0]) {
		t.Errorf("deleted %v, want %v", deleted, want)
	}
	if got, want := c.Bytes, int64(7+len("orphan-old")*100); got != want {
		t.Errorf("bytes %d, want %d", got, want)
	}
	if len(c.Keep) != 6 {
		t.Errorf("kept %+v, want 6", c.Keep)
	}
	for _, v := range c.Keep {
		if len(v.Needs) == 0 {
			t.Errorf("%s kept for no reason", v.Object.Key)
		}
	}
	if len(c.Foreign) != 1 || c.Foreign[0] != "p/README.txt" {
		t.Errorf("foreign %v", c.Foreign)
	}

	// With no grace, the young orphan goes too; with nothing reachable at all nothing young goes.
	c, _ = retention.PlanCollection(retention.Collect{Prefix: "p", Objects: objects, Functions: fns, Releases: rels, Now: now})
	if len(c.Delete) != 3 {
		t.Errorf("grace 0 deletes %d, want 3", len(c.Delete))
	}
	if _, err := retention.PlanCollection(retention.Collect{Prefix: "p", Functions: []inventory.Function{{Name: "f", Versions: []inventory.Version{{Number: "1", CodeSha256: "bad"}}}}}); err == nil {
		t.Error("a version with an unreadable CodeSha256 did not stop the plan")
	}
}

func TestParseGrace(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{{"7d", 7 * 24 * time.Hour, true}, {"0d", 0, true}, {"36h", 36 * time.Hour, true}, {"90m", 90 * time.Minute, true}, {"0", 0, true},
		{"-1h", 0, false}, {"d", 0, false}, {"x7d", 0, false}, {"7 days", 0, false}, {"", 0, false}} {
		got, err := retention.ParseGrace(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseGrace(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestMissingNamed(t *testing.T) {
	rels := []*release.Release{{ID: "r1", Phase: release.RolledBack, Functions: []release.Function{{FunctionName: "shop-b-prod"}, {FunctionName: "shop-a-prod"}}}}
	fns := []inventory.Function{{Name: "shop-b-prod", Missing: true}, {Name: "shop-a-prod", Missing: true}, {Name: "shop-c-prod", Missing: true}, {Name: "shop-d-prod"}}
	if got, want := strings.Join(retention.MissingNamed(fns, rels), ","), "shop-a-prod,shop-b-prod"; got != want {
		t.Fatalf("MissingNamed=%q, want %q", got, want)
	}
	if got := retention.MissingNamed(fns, nil); len(got) != 0 {
		t.Fatalf("MissingNamed without releases=%v, want none", got)
	}
}

// A release that started after gc's first read and reuses an old artifact keeps it; a
// finished one, or another key, does not.
func TestSpareLive(t *testing.T) {
	obj := func(k string) retention.ObjectVerdict {
		return retention.ObjectVerdict{Object: inventory.Object{Key: k, Size: 10}}
	}
	c := retention.Collection{Delete: []retention.ObjectVerdict{obj("p/a.zip"), obj("p/b.zip"), obj("p/c.zip")}, Keep: []retention.ObjectVerdict{obj("p/0.zip")}, Bytes: 30}
	rels := []*release.Release{
		{ID: "new", Phase: release.Publishing, Functions: []release.Function{{FunctionName: "f", ArtifactKey: "p/b.zip"}}},
		{ID: "done", Phase: release.Promoted, Functions: []release.Function{{FunctionName: "f", ArtifactKey: "p/c.zip"}}},
	}
	got := retention.SpareLive(c, rels)
	var del, keep []string
	for _, v := range got.Delete {
		del = append(del, v.Object.Key)
	}
	for _, v := range got.Keep {
		keep = append(keep, v.Object.Key)
	}
	if g, w := strings.Join(del, ","), "p/a.zip,p/c.zip"; g != w {
		t.Errorf("delete %s, want %s", g, w)
	}
	if g, w := strings.Join(keep, ","), "p/0.zip,p/b.zip"; g != w {
		t.Errorf("keep %s, want %s", g, w)
	}
	if got.Bytes != 20 {
		t.Errorf("bytes %d, want 20", got.Bytes)
	}
}
