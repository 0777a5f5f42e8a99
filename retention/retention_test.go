package retention_test

import (
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/release"
	"github.com/aviary-deploy/aviary/retention"
)

func rel(id string, phase release.Phase, day int, prev, next string) *release.Release {
	return &release.Release{ID: id, Phase: phase, CreatedAt: time.Date(2026, 1, day, 0, 0, 0, 0, time.UTC),
		Functions: []release.Function{{Name: "api", FunctionName: "shop-api", Previous: prev, New: next}}}
}

func TestRetainedKeepsLiveAndLatestPromoted(t *testing.T) {
	rels := []*release.Release{
		rel("r1", release.Promoted, 1, "", "1"),
		rel("r2", release.Promoted, 2, "1", "2"),
		rel("r3", release.RolledBack, 3, "2", "3"),
		rel("r4", release.Promoted, 4, "2", "4"),
		rel("r5", release.Promoted, 5, "4", "5"),
		rel("r6", release.Shifting, 6, "5", "6"),
		rel("r7", release.Failed, 7, "5", "7"),
	}
	var ids []string
	for _, r := range retention.Retained(rels, 2) {
		ids = append(ids, r.ID)
	}
	if got, want := ids, []string{"r6", "r5", "r4"}; len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("retained %v, want %v", got, want)
	}
	needs := retention.ReleaseNeeds(retention.Retained(rels, 2))["shop-api"]
	for _, v := range []string{"2", "4", "5", "6"} {
		if len(needs[v]) == 0 {
			t.Errorf("version %s is not needed by a retained release: %v", v, needs)
		}
	}
	for _, v := range []string{"1", "3", "7"} {
		if len(needs[v]) != 0 {
			t.Errorf("version %s is needed by %v", v, needs[v])
		}
	}
	if got := needs["5"]; len(got) != 2 || got[0].String() != "release r6 (live, previous)" {
		t.Errorf("version 5 needs %v", got)
	}
}
