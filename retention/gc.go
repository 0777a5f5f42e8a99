package retention

import (
	"fmt"
	"sort"
	"time"

	"github.com/aviary-deploy/aviary/inventory"
	"github.com/aviary-deploy/aviary/release"
)

// Collect is what gc reads: every object under the artifact prefix, and everything that can
// reach one.
type Collect struct {
	Prefix  string
	Objects []inventory.Object
	// Functions are every function of every environment that shares the bucket and prefix:
	// marking only one environment's would delete another's artifacts.
	Functions []inventory.Function
	// Releases are the retained releases (live, and each environment's latest promoted).
	Releases []*release.Release
	Now      time.Time
	Grace    time.Duration
}

// ObjectVerdict is what gc decides about one object.
type ObjectVerdict struct {
	Object inventory.Object `json:"object"`
	// Needs say why it is kept: the versions whose code it is, the releases that name it, or
	// the grace period; empty for what is deleted.
	Needs []Need `json:"needs,omitempty"`
}

// Collection is gc's plan.
type Collection struct {
	Delete []ObjectVerdict `json:"delete"`
	Keep   []ObjectVerdict `json:"keep"`
	// Foreign are objects under the prefix whose keys are not artifact keys
	// (PREFIX/<sha256>.zip): someone else's, never touched.
	Foreign []string `json:"foreign,omitempty"`
	// Bytes is the size of what is deleted.
	Bytes int64 `json:"bytes"`
}

// Reachable marks every artifact key something can reach: the code of every version (and
// $LATEST) of every function given, and the artifact and the base code of every release given.
func Reachable(prefix string, fns []inventory.Function, rels []*release.Release) (map[string][]Need, error) {
	out := map[string][]Need{}
	mark := func(codeSha256 string, n Need) error {
		if codeSha256 == "" || IsImageCode(codeSha256) {
			return nil // no code, or an image's: it lives in ECR, not among the artifacts
		}
		key, err := KeyOf(prefix, codeSha256)
		if err != nil {
			return err
		}
		out[key] = append(out[key], n)
		return nil
	}
	for _, fn := range fns {
		if fn.Missing {
			continue
		}
		if err := mark(fn.Latest.CodeSha256, Need{Kind: ByLatest, By: fn.Name}); err != nil {
			return nil, fmt.Errorf("%s $LATEST: %w", fn.Name, err)
		}
		for _, v := range fn.Versions {
			if err := mark(v.CodeSha256, Need{Kind: "version", By: fn.Name + ":" + v.Number}); err != nil {
				return nil, fmt.Errorf("%s version %s: %w", fn.Name, v.Number, err)
			}
		}
	}
	for _, r := range rels {
		for _, f := range r.Functions {
			if f.ArtifactKey != "" {
				out[f.ArtifactKey] = append(out[f.ArtifactKey], Need{Kind: ByRelease, By: Role(r, false)})
			}
			if err := mark(f.BaseCodeSha256, Need{Kind: ByRelease, By: Role(r, true)}); err != nil {
				return nil, fmt.Errorf("release %s: %w", r.ID, err)
			}
		}
	}
	return out, nil
}

// PlanCollection decides what gc deletes: an artifact key nothing reaches AND older than the
// grace period. Age alone never deletes anything; the grace period only spares what a deploy
// uploading right now has not yet published (no version reaches it yet).
func PlanCollection(in Collect) (Collection, error) {
	reach, err := Reachable(in.Prefix, in.Functions, in.Releases)
	if err != nil {
		return Collection{}, err
	}
	c := Collection{Delete: []ObjectVerdict{}, Keep: []ObjectVerdict{}}
	for _, o := range in.Objects {
		if !IsArtifactKey(in.Prefix, o.Key) {
			c.Foreign = append(c.Foreign, o.Key)
			continue
		}
		if needs := reach[o.Key]; len(needs) > 0 {
			c.Keep = append(c.Keep, ObjectVerdict{Object: o, Needs: needs})
			continue
		}
		if age := in.Now.Sub(o.LastModified); age < in.Grace {
			c.Keep = append(c.Keep, ObjectVerdict{Object: o, Needs: []Need{{Kind: ByGrace, By: fmt.Sprintf("uploaded %s ago, grace %s", age.Round(time.Second), in.Grace)}}})
			continue
		}
		c.Delete = append(c.Delete, ObjectVerdict{Object: o})
		c.Bytes += o.Size
	}
	sort.Slice(c.Delete, func(i, j int) bool { return c.Delete[i].Object.Key < c.Delete[j].Object.Key })
	sort.Slice(c.Keep, func(i, j int) bool { return c.Keep[i].Object.Key < c.Keep[j].Object.Key })
	sort.Strings(c.Foreign)
	return c, nil
}

// ParseGrace reads a grace period: days ("7d") or a Go duration ("36h", "90m"); never negative.
func ParseGrace(s string) (time.Duration, error) {
	if n, ok := cutDays(s); ok {
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a grace period: use days (7d) or a duration (36h)", s)
	}
	return d, nil
}

func cutDays(s string) (int, bool) {
	if len(s) < 2 || s[len(s)-1] != 'd' {
		return 0, false
	}
	n := 0
	for _, c := range s[:len(s)-1] {
		if c < '0' || c > '9' || n > 100000 {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// MissingNamed are the functions the inventory found missing that a release names (as a
// function of it, whatever its phase), sorted. gc cannot tell a function it may not see from
// one that was deleted: either way no version of it is read, and the artifacts its versions use
// would look unreachable.
func MissingNamed(fns []inventory.Function, rels []*release.Release) []string {
	named := map[string]bool{}
	for _, r := range rels {
		for _, f := range r.Functions {
			named[f.FunctionName] = true
		}
	}
	var out []string
	for _, fn := range fns {
		if fn.Missing && named[fn.Name] {
			out = append(out, fn.Name)
		}
	}
	sort.Strings(out)
	return out
}

// SpareLive moves out of c.Delete every key a live release names as its artifact, kept for that
// release. gc calls it with the store's releases read again right before it deletes: a deploy
// that started after gc's first read records its release (with its artifact keys) before it
// uploads, and its upload skips a key that is already there — an old, unreachable artifact it
// is about to use again.
func SpareLive(c Collection, rels []*release.Release) Collection {
	named := map[string][]Need{}
	for _, r := range rels {
		if !Live(r) {
			continue
		}
		for _, f := range r.Functions {
			if f.ArtifactKey != "" {
				named[f.ArtifactKey] = append(named[f.ArtifactKey], Need{Kind: ByRelease, By: Role(r, false)})
			}
		}
	}
	out := Collection{Delete: []ObjectVerdict{}, Keep: c.Keep, Foreign: c.Foreign}
	for _, v := range c.Delete {
		if needs := named[v.Object.Key]; len(needs) > 0 {
			out.Keep = append(out.Keep, ObjectVerdict{Object: v.Object, Needs: needs})
			continue
		}
		out.Delete = append(out.Delete, v)
		out.Bytes += v.Object.Size
	}
	sort.Slice(out.Keep, func(i, j int) bool { return out.Keep[i].Object.Key < out.Keep[j].Object.Key })
	return out
}
