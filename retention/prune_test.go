package retention

import (
	"fmt"
	"strings"
	"testing"
)

func TestPrune(t *testing.T) {
	ten := []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}
	cases := []struct {
		name  string
		fn    Function
		keep  int
		needs []map[string][]Need
		// want is every version's verdict: "delete", or its needs as Need.String joined by "; ".
		want map[string]string
	}{
		{
			name: "only the newest",
			fn:   Function{Versions: ten}, keep: 2,
			want: map[string]string{"1": "delete", "2": "delete", "3": "delete", "4": "delete", "5": "delete", "6": "delete", "7": "delete", "8": "delete", "9": "newest", "10": "newest"},
		},
		{
			name: "newest by number, not by order read",
			fn:   Function{Versions: []string{"10", "9", "100", "2"}}, keep: 1,
			want: map[string]string{"2": "delete", "9": "delete", "10": "delete", "100": "newest"},
		},
		{
			name: "an alias's version and its extra weight, every alias",
			fn: Function{Versions: ten, Aliases: []AliasTarget{
				{Name: "live", Version: "3", Weights: map[string]float64{"4": 0.1}},
				{Name: "someone-elses", Version: "1"},
			}}, keep: 1,
			want: map[string]string{"1": "alias someone-elses", "2": "delete", "3": "alias live", "4": "alias live (weight)", "5": "delete", "6": "delete", "7": "delete", "8": "delete", "9": "delete", "10": "newest"},
		},
		{
			name: "releases and consumers, every reason",
			fn:   Function{Versions: ten, Aliases: []AliasTarget{{Name: "live", Version: "10"}}}, keep: 1,
			needs: []map[string][]Need{
				{"2": {{Kind: ByRelease, By: "r1 (promoted, previous)"}}, "10": {{Kind: ByRelease, By: "r1 (promoted, new)"}}},
				{"5": {{Kind: ByCloudFront, By: "E1"}}, "6": {{Kind: ByEventSource, By: "uuid-1"}}, "7": {{Kind: ByProvisioned, By: "7"}}},
			},
			want: map[string]string{"1": "delete", "2": "release r1 (promoted, previous)", "3": "delete", "4": "delete",
				"5": "cloudfront E1", "6": "event-source-mapping uuid-1", "7": "provisioned-concurrency 7", "8": "delete", "9": "delete",
				"10": "alias live; release r1 (promoted, new); newest"},
		},
		{
			name: "$LATEST is never deleted and takes no newest slot",
			fn:   Function{Versions: []string{"$LATEST", "1", "2"}}, keep: 1,
			want: map[string]string{"$LATEST": "$LATEST", "1": "delete", "2": "newest"},
		},
		{
			name: "keep more than there are",
			fn:   Function{Versions: []string{"1", "2"}}, keep: 5,
			want: map[string]string{"1": "newest", "2": "newest"},
		},
		{
			name: "needs naming versions that do not exist change nothing",
			fn:   Function{Versions: []string{"1", "2"}}, keep: 1,
			needs: []map[string][]Need{{"99": {{Kind: ByRelease, By: "r"}}}},
			want:  map[string]string{"1": "delete", "2": "newest"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Prune(c.fn, c.keep, c.needs...)
			if len(got) != len(c.want) {
				t.Fatalf("%d verdicts, want %d: %v", len(got), len(c.want), got)
			}
			prev := -1
			for _, v := range got {
				if n := number(v.Version); n < prev {
					t.Errorf("verdicts not oldest first: %v", got)
				} else {
					prev = n
				}
				s := "delete"
				if !v.Delete() {
					var parts []string
					for _, n := range v.Needs {
						parts = append(parts, n.String())
					}
					s = strings.Join(parts, "; ")
				}
				if want := c.want[v.Version]; s != want {
					t.Errorf("version %s: %s, want %s", v.Version, s, want)
				}
			}
		})
	}
}

// TestPruneNeverDeletesWhatAnAliasRoutesTo: whatever keep is, every version an alias routes to
// survives.
func TestPruneNeverDeletesWhatAnAliasRoutesTo(t *testing.T) {
	var vs []string
	for i := 1; i <= 60; i++ {
		vs = append(vs, fmt.Sprint(i))
	}
	fn := Function{Versions: vs, Aliases: []AliasTarget{{Name: "a", Version: "7", Weights: map[string]float64{"13": 0.5}}, {Name: "b", Version: "21"}}}
	for keep := 1; keep <= 3; keep++ {
		deleted := 0
		for _, v := range Prune(fn, keep) {
			if v.Delete() {
				deleted++
				if v.Version == "7" || v.Version == "13" || v.Version == "21" {
					t.Errorf("keep %d: version %s deleted", keep, v.Version)
				}
			}
		}
		if want := 60 - 3 - keep; deleted != want {
			t.Errorf("keep %d: %d deleted, want %d", keep, deleted, want)
		}
	}
}
