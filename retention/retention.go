// Package retention decides what Aviary may delete after releases: Lambda versions (`aviary
// prune`) and artifact objects (`aviary gc`), and what `aviary doctor` must find in place for
// every rollback to run.
//
// The rule it keeps: nothing a rollback or a consumer may need is ever deleted. A version is kept
// when anything names it — any alias of its function (as its version or an extra weight), a live
// release, one of the environment's latest promoted releases, a CloudFront distribution
// (Lambda@Edge), an event source mapping, a provisioned-concurrency configuration — or it is among
// the newest few. An artifact is kept when a kept version's code or a retained release names it,
// or when it is younger than a grace period. Everything else can go, on every run.
//
// The package holds the decisions only; reading AWS is its callers' (package inventory).
package retention

import (
	"fmt"
	"sort"

	"github.com/aviary-deploy/aviary/inventory"
	"github.com/aviary-deploy/aviary/release"
)

// Kind is what needs a version or an artifact; Need is one reason to keep something. They are
// declared with what the inventory reads (a mapping, a distribution, provisioned concurrency
// name the versions they use), so that reading AWS needs nothing of these decisions.
type (
	Kind = inventory.Kind
	Need = inventory.Need
)

// Kinds of need, in the order they are reported.
const (
	ByAlias       Kind = "alias"
	ByRelease     Kind = "release"
	ByCloudFront       = inventory.ByCloudFront
	ByEventSource      = inventory.ByEventSource
	ByProvisioned      = inventory.ByProvisioned
	ByNewest      Kind = "newest"
	ByLatest      Kind = "$LATEST"
	ByGrace       Kind = "grace"
)

// Retained returns the releases whose versions and artifacts are kept: every release that has not
// ended (it may still roll back to its previous versions, or promote its new ones), and the
// latest k promoted, newest first. rels may come in any order.
func Retained(rels []*release.Release, k int) []*release.Release {
	sorted := append([]*release.Release(nil), rels...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].CreatedAt.After(sorted[j].CreatedAt) })
	var out []*release.Release
	promoted := 0
	for _, r := range sorted {
		switch {
		case !r.Phase.Final():
			out = append(out, r)
		case r.Phase == release.Promoted && promoted < k:
			promoted++
			out = append(out, r)
		}
	}
	return out
}

// Live reports whether a release has not ended.
func Live(r *release.Release) bool { return !r.Phase.Final() }

// Role names what a retained release keeps a version for.
func Role(r *release.Release, previous bool) string {
	state := "promoted"
	if Live(r) {
		state = "live"
	}
	if previous {
		return fmt.Sprintf("%s (%s, previous)", r.ID, state)
	}
	return fmt.Sprintf("%s (%s, new)", r.ID, state)
}

// ReleaseNeeds is, per Lambda function name, the versions the retained releases name (new and
// previous) and why.
func ReleaseNeeds(retained []*release.Release) map[string]map[string][]Need {
	out := map[string]map[string][]Need{}
	add := func(fn, v string, n Need) {
		if v == "" || v == "$LATEST" {
			return
		}
		if out[fn] == nil {
			out[fn] = map[string][]Need{}
		}
		out[fn][v] = append(out[fn][v], n)
	}
	for _, r := range retained {
		for _, f := range r.Functions {
			add(f.FunctionName, f.New, Need{Kind: ByRelease, By: Role(r, false)})
			add(f.FunctionName, f.Previous, Need{Kind: ByRelease, By: Role(r, true)})
		}
	}
	return out
}
