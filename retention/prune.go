package retention

import (
	"sort"
	"strconv"
)

// ByInUse is a version Lambda refused to delete because something uses it now (an alias moved
// onto it after prune read the function): kept, and reported.
const ByInUse Kind = "in-use"

// Function is what prune decides about for one Lambda function: its published versions and
// every alias it has (the manifest's and any other), as the inventory read them.
type Function struct {
	Name string
	// Versions are the published version numbers, in any order; $LATEST, if present, is kept.
	Versions []string
	Aliases  []AliasTarget
}

// AliasTarget is an alias and the versions it routes to: its version and any extra weights.
type AliasTarget struct {
	Name    string
	Version string
	Weights map[string]float64
}

// Verdict is prune's decision about one version: kept, with every reason, or deleted when no
// reason is left.
type Verdict struct {
	Version string
	Needs   []Need
}

// Delete reports whether nothing needs the version.
func (v Verdict) Delete() bool { return len(v.Needs) == 0 }

// Prune decides, for every version of fn, whether it is kept and why. needs are the versions
// something outside the function names (the retained releases, CloudFront, event source
// mappings, provisioned concurrency), by version; keep is how many of the newest versions are
// kept whatever else holds (at least 1: the caller validates it). Verdicts come oldest first.
//
// A version is kept when any alias routes to it (its version or an extra weight: a weighted
// alias serves both), when needs name it, when it is among the newest keep, or when it is
// $LATEST. Every reason is reported, not only the first, so that a reader sees why.
func Prune(fn Function, keep int, needs ...map[string][]Need) []Verdict {
	versions := append([]string(nil), fn.Versions...)
	sort.SliceStable(versions, func(i, j int) bool { return number(versions[i]) < number(versions[j]) })
	newest := map[string]bool{}
	for i := len(versions) - 1; i >= 0 && len(newest) < keep; i-- {
		if versions[i] != "$LATEST" {
			newest[versions[i]] = true
		}
	}
	byAlias := map[string][]Need{}
	for _, a := range fn.Aliases {
		byAlias[a.Version] = append(byAlias[a.Version], Need{Kind: ByAlias, By: a.Name})
		extra := make([]string, 0, len(a.Weights))
		for v := range a.Weights {
			extra = append(extra, v)
		}
		sort.Strings(extra)
		for _, v := range extra {
			if v != a.Version {
				byAlias[v] = append(byAlias[v], Need{Kind: ByAlias, By: a.Name + " (weight)"})
			}
		}
	}
	out := make([]Verdict, 0, len(versions))
	for _, v := range versions {
		var ns []Need
		if v == "$LATEST" {
			ns = append(ns, Need{Kind: ByLatest})
		}
		ns = append(ns, byAlias[v]...)
		for _, m := range needs {
			ns = append(ns, m[v]...)
		}
		if newest[v] {
			ns = append(ns, Need{Kind: ByNewest})
		}
		sortNeeds(ns)
		out = append(out, Verdict{Version: v, Needs: ns})
	}
	return out
}

// kindOrder is the order needs are reported in (the order of the Kind constants).
var kindOrder = map[Kind]int{ByLatest: 0, ByAlias: 1, ByRelease: 2, ByCloudFront: 3, ByEventSource: 4, ByProvisioned: 5, ByNewest: 6, ByGrace: 7, ByInUse: 8}

func sortNeeds(ns []Need) {
	sort.SliceStable(ns, func(i, j int) bool { return kindOrder[ns[i].Kind] < kindOrder[ns[j].Kind] })
}

// number is a version's number; $LATEST sorts after every published version.
func number(v string) int {
	n, err := strconv.Atoi(v)
	if err != nil {
		return int(^uint(0) >> 1)
	}
	return n
}
