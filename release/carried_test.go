package release_test

import (
	"context"
	"testing"

	"github.com/aviary-deploy/aviary/release"
)

// inspectOnly answers Inspect with one Current.
type inspectOnly struct {
	release.Fleet
	cur release.Current
}

func (f inspectOnly) Inspect(context.Context, string, string) (release.Current, error) {
	return f.cur, nil
}

// TestPlanShowsTheConfigurationANewVersionCarries: a new version takes $LATEST's configuration,
// except what the manifest manages. When that differs from what the alias serves (a rolled-back
// configuration release leaves its configuration in $LATEST; Terraform may have changed it), the
// plan says so, environment values masked, though the manifest names no configuration.
func TestPlanShowsTheConfigurationANewVersionCarries(t *testing.T) {
	alias := &release.Settings{Environment: map[string]string{"FLAVOR": "good"}, MemorySize: 128, Timeout: 3, Layers: []string{}}
	latest := &release.Settings{Environment: map[string]string{"FLAVOR": "bad-secret"}, MemorySize: 256, Timeout: 3, Layers: []string{}}
	cur := release.Current{Exists: true, AliasExists: true, AliasVersion: "4", AliasCodeSha256: "old", LatestSettings: latest, AliasSettings: alias}
	plan := func(t release.Target) release.PlanRow {
		rows, err := release.Plan(context.Background(), inspectOnly{cur: cur}, "live", []release.Target{t}, false, 1)
		if err != nil {
			panic(err)
		}
		return rows[0]
	}

	row := plan(release.Target{Name: "api", FunctionName: "shop-api", CodeSha256: "new"})
	if len(row.ConfigChanges) != 2 || row.ConfigChanges[0].String() != "environment.FLAVOR: (changed, masked)" || row.ConfigChanges[1].String() != `memory: "128" → "256"` {
		t.Errorf("a code change carrying $LATEST's configuration: %v", row.ConfigChanges)
	}
	// What the manifest manages is its own diff, not $LATEST's.
	managed := &release.Settings{MemorySize: 512}
	row = plan(release.Target{Name: "api", FunctionName: "shop-api", CodeSha256: "new", Settings: managed, Configuration: &release.Configuration{Template: *managed}})
	if len(row.ConfigChanges) != 2 || row.ConfigChanges[0].Field != "memory" || row.ConfigChanges[0].New != "512" || row.ConfigChanges[1].Field != "environment.FLAVOR" {
		t.Errorf("a managed memory, the environment carried: %v", row.ConfigChanges)
	}
	// Unchanged code: no new version, nothing carried.
	if row := plan(release.Target{Name: "api", FunctionName: "shop-api", CodeSha256: "old"}); row.Change || len(row.ConfigChanges) != 0 {
		t.Errorf("unchanged code: change %v, %v", row.Change, row.ConfigChanges)
	}
}
