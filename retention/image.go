package retention

import (
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/aviary-deploy/aviary/inventory"
)

// Container-image functions keep their code in ECR, not in the artifact bucket: their versions'
// CodeSha256 is the image manifest's digest in hex (64 hex digits, where a zip's is 44 characters
// of base64). gc and the artifact checks leave them alone; doctor checks instead that the digests
// aliases and retained releases need are still in ECR and that no lifecycle policy can expire them.

// IsImageCode reports whether a CodeSha256 is an image's (the digest's hex) rather than a zip's.
func IsImageCode(codeSha256 string) bool {
	if len(codeSha256) != 64 {
		return false
	}
	for _, c := range codeSha256 {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// NeededImage is an image version something needs.
type NeededImage struct {
	Function string `json:"function"`
	Version  string `json:"version"`
	// Digest is sha256:<hex>, the version's CodeSha256 as a digest.
	Digest string `json:"digest"`
	Needs  []Need `json:"needs"`
}

// ImageNeeds lists the image versions an alias or a retained release needs (releaseNeeds is
// ReleaseNeeds of the environment's retained releases), sorted by function and version. Versions
// that no longer exist are RollbackNeeds' to report.
func ImageNeeds(fns []inventory.Function, releaseNeeds map[string]map[string][]Need) []NeededImage {
	var out []NeededImage
	for _, fn := range fns {
		if fn.Missing {
			continue
		}
		versions := map[string]inventory.Version{}
		for _, v := range fn.Versions {
			versions[v.Number] = v
		}
		needs := map[string][]Need{}
		add := func(v string, n Need) {
			if ver, ok := versions[v]; ok && IsImageCode(ver.CodeSha256) {
				needs[v] = append(needs[v], n)
			}
		}
		for _, a := range fn.Aliases {
			add(a.Version, Need{Kind: ByAlias, By: a.Name})
			for v := range a.Weights {
				add(v, Need{Kind: ByAlias, By: a.Name + " (extra weight)"})
			}
		}
		for v, ns := range releaseNeeds[fn.Name] {
			for _, n := range ns {
				add(v, n)
			}
		}
		for v, ns := range needs {
			out = append(out, NeededImage{Function: fn.Name, Version: v, Digest: "sha256:" + versions[v].CodeSha256, Needs: ns})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Function != out[j].Function {
			return out[i].Function < out[j].Function
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// RepoImage is one image of a repository, as DescribeImages reports it.
type RepoImage struct {
	Digest   string
	Tags     []string
	PushedAt time.Time
}

// ImagePolicy is an ECR lifecycle policy document.
type ImagePolicy struct {
	Rules []ImageRule `json:"rules"`
}

// ImageRule is one rule of an ECR lifecycle policy.
type ImageRule struct {
	RulePriority int    `json:"rulePriority"`
	Description  string `json:"description"`
	Selection    struct {
		TagStatus      string   `json:"tagStatus"` // tagged, untagged or any
		TagPrefixList  []string `json:"tagPrefixList"`
		TagPatternList []string `json:"tagPatternList"`
		CountType      string   `json:"countType"` // imageCountMoreThan or sinceImagePushed
		CountUnit      string   `json:"countUnit"`
		CountNumber    int      `json:"countNumber"`
	} `json:"selection"`
	Action struct {
		Type string `json:"type"`
	} `json:"action"`
}

// ParseImagePolicy reads an ECR lifecycle policy's text.
func ParseImagePolicy(text string) (ImagePolicy, error) {
	var p ImagePolicy
	if err := json.Unmarshal([]byte(text), &p); err != nil {
		return p, fmt.Errorf("the lifecycle policy is not JSON: %w", err)
	}
	sort.SliceStable(p.Rules, func(i, j int) bool { return p.Rules[i].RulePriority < p.Rules[j].RulePriority })
	return p, nil
}

// ImageRisk is what a lifecycle rule can do to a needed image.
type ImageRisk struct {
	Rule     int      `json:"rule"` // its rulePriority
	Severity Severity `json:"severity"`
	Does     string   `json:"does"`
	Fix      string   `json:"fix"`
}

// matches reports whether a rule's selection takes an image with these tags.
func (r ImageRule) matches(tags []string) bool {
	switch r.Selection.TagStatus {
	case "any":
		return true
	case "untagged":
		return len(tags) == 0
	case "tagged":
		if len(tags) == 0 {
			return false
		}
		// Every prefix (or pattern) of the list must match one of the image's tags.
		for _, p := range r.Selection.TagPrefixList {
			if !anyTag(tags, func(t string) bool { return strings.HasPrefix(t, p) }) {
				return false
			}
		}
		for _, p := range r.Selection.TagPatternList {
			if !anyTag(tags, func(t string) bool { ok, _ := path.Match(p, t); return ok }) {
				return false
			}
		}
		return len(r.Selection.TagPrefixList)+len(r.Selection.TagPatternList) > 0
	}
	return false
}

func anyTag(tags []string, f func(string) bool) bool {
	for _, t := range tags {
		if f(t) {
			return true
		}
	}
	return false
}

// ImageRisks reads a repository's lifecycle policy against one needed image, as ECR applies it:
// rules in rulePriority order, each image taken by the first rule whose selection matches it (a
// lower-priority rule never expires an image a higher one selected), imageCountMoreThan N
// expiring all but the N most recently pushed images the rule selects, sinceImagePushed N days
// those pushed more than N days before now.
//
//   - The rule that takes the image now and would expire it now: blocking.
//   - The rule that takes it now but would not yet: a warning, saying when it would (N more
//     pushes, or a date). tagStatus any and count rules select a pinned digest however it is
//     tagged: being tagged protects nothing from them.
//   - An untagged rule while the image is tagged: a warning, since moving its tag to the next
//     image (the usual release) leaves it untagged, and then that rule can take it.
func ImageRisks(p ImagePolicy, all []RepoImage, need RepoImage, now time.Time) []ImageRisk {
	var out []ImageRisk
	fix := "keep the digests releases need out of the policy's reach: tag them with a prefix no rule selects and select only other prefixes (tagStatus tagged with tagPrefixList), never tagStatus any; or raise countNumber above the images a rollback spans"
	taken := false
	for _, r := range p.Rules {
		if r.Action.Type != "" && r.Action.Type != "expire" {
			continue
		}
		sel := r.Selection
		if !taken && r.matches(need.Tags) {
			taken = true
			switch sel.CountType {
			case "imageCountMoreThan":
				newer := 0
				for _, im := range all {
					if im.Digest != need.Digest && r.matches(im.Tags) && !takenBefore(p, r, im.Tags) && im.PushedAt.After(need.PushedAt) {
						newer++
					}
				}
				if newer >= sel.CountNumber {
					out = append(out, ImageRisk{Rule: r.RulePriority, Severity: Blocking, Fix: fix,
						Does: fmt.Sprintf("rule %d (tagStatus %s, imageCountMoreThan %d) expires it: %d newer images it selects were pushed since", r.RulePriority, sel.TagStatus, sel.CountNumber, newer)})
				} else {
					out = append(out, ImageRisk{Rule: r.RulePriority, Severity: Warning, Fix: fix,
						Does: fmt.Sprintf("rule %d (tagStatus %s, imageCountMoreThan %d) expires it after %d more pushes of images it selects", r.RulePriority, sel.TagStatus, sel.CountNumber, sel.CountNumber-newer)})
				}
			case "sinceImagePushed":
				at := need.PushedAt.AddDate(0, 0, sel.CountNumber)
				if !now.Before(at) {
					out = append(out, ImageRisk{Rule: r.RulePriority, Severity: Blocking, Fix: fix,
						Does: fmt.Sprintf("rule %d (tagStatus %s, sinceImagePushed %d days) expires it: it was pushed %s", r.RulePriority, sel.TagStatus, sel.CountNumber, need.PushedAt.UTC().Format(time.RFC3339))})
				} else {
					out = append(out, ImageRisk{Rule: r.RulePriority, Severity: Warning, Fix: fix,
						Does: fmt.Sprintf("rule %d (tagStatus %s, sinceImagePushed %d days) expires it on %s", r.RulePriority, sel.TagStatus, sel.CountNumber, at.UTC().Format("2006-01-02"))})
				}
			}
			continue
		}
		if sel.TagStatus == "untagged" && len(need.Tags) > 0 && !taken {
			out = append(out, ImageRisk{Rule: r.RulePriority, Severity: Warning, Fix: fix,
				Does: fmt.Sprintf("rule %d (untagged, %s %d) can expire it once its tag%s (%s) move%s to another image, as the next release's push does", r.RulePriority, sel.CountType, sel.CountNumber, plural(len(need.Tags)), strings.Join(need.Tags, ", "), verbS(len(need.Tags)))})
		}
	}
	return out
}

// takenBefore reports whether a rule before r selects an image with these tags (then r does not
// count it).
func takenBefore(p ImagePolicy, r ImageRule, tags []string) bool {
	for _, q := range p.Rules {
		if q.RulePriority >= r.RulePriority {
			return false
		}
		if q.matches(tags) {
			return true
		}
	}
	return false
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func verbS(n int) string {
	if n == 1 {
		return "s"
	}
	return ""
}
