package retention

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/aviary-deploy/aviary/artifact"
	"github.com/aviary-deploy/aviary/inventory"
)

// KeyOf is the artifact key of code whose SHA-256 Lambda reports as codeSha256 (base64): the same
// digest, in hex, under the prefix.
func KeyOf(prefix, codeSha256 string) (string, error) {
	sum, err := base64.StdEncoding.DecodeString(codeSha256)
	if err != nil || len(sum) != 32 {
		return "", fmt.Errorf("%q is not a SHA-256 in base64", codeSha256)
	}
	return artifact.Key(prefix, artifact.Digest{Hex: hex.EncodeToString(sum), CodeSha256: codeSha256}), nil
}

// IsArtifactKey reports whether key is one Aviary names: PREFIX/<64 hex digits>.zip. Anything
// else under the prefix is someone else's and never collected.
func IsArtifactKey(prefix, key string) bool {
	p := strings.Trim(prefix, "/")
	dir, name := path.Split(key)
	if strings.TrimSuffix(dir, "/") != p {
		return false
	}
	h, ok := strings.CutSuffix(name, ".zip")
	if !ok || len(h) != 64 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

// Wanted is one artifact a rollback may need: a version's code, the versions that have it and why.
type Wanted struct {
	Key        string `json:"key"`
	CodeSha256 string `json:"codeSha256"`
	// CodeSize is the version's code size as Lambda reports it (0: unknown, not checked).
	CodeSize int64 `json:"codeSize,omitempty"`
	// Versions name the function and version ("shop-api-prod:7") whose code this is.
	Versions []string `json:"versions"`
	Needs    []Need   `json:"needs"`
}

// Gone is a version something needs that Lambda no longer has: no artifact can bring it back
// under its number, so a rollback to it cannot run.
type Gone struct {
	Function string `json:"function"`
	Version  string `json:"version"`
	Needs    []Need `json:"needs"`
}

// RollbackNeeds is what a rollback of an environment may need: the code of every version an
// alias of its functions points to (as its version or an extra weight) or a retained release
// names, one Wanted per artifact key, sorted by key; and the needed versions that no longer exist.
// releaseNeeds is ReleaseNeeds of the environment's retained releases.
func RollbackNeeds(prefix string, fns []inventory.Function, releaseNeeds map[string]map[string][]Need) ([]Wanted, []Gone, error) {
	byKey := map[string]*Wanted{}
	var gone []Gone
	for _, fn := range fns {
		if fn.Missing {
			continue
		}
		needs := map[string][]Need{}
		var order []string
		add := func(v string, n Need) {
			if v == "" || v == "$LATEST" {
				return
			}
			if _, ok := needs[v]; !ok {
				order = append(order, v)
			}
			needs[v] = append(needs[v], n)
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
		sort.Strings(order)
		versions := map[string]inventory.Version{}
		for _, v := range fn.Versions {
			versions[v.Number] = v
		}
		for _, v := range order {
			ver, ok := versions[v]
			if !ok {
				gone = append(gone, Gone{Function: fn.Name, Version: v, Needs: needs[v]})
				continue
			}
			if IsImageCode(ver.CodeSha256) {
				continue // an image in ECR, not an artifact: see ImageNeeds
			}
			key, err := KeyOf(prefix, ver.CodeSha256)
			if err != nil {
				return nil, nil, fmt.Errorf("%s version %s: %w", fn.Name, v, err)
			}
			w := byKey[key]
			if w == nil {
				w = &Wanted{Key: key, CodeSha256: ver.CodeSha256, CodeSize: ver.CodeSize}
				byKey[key] = w
			}
			w.Versions = append(w.Versions, fn.Name+":"+v)
			w.Needs = append(w.Needs, needs[v]...)
		}
	}
	out := make([]Wanted, 0, len(byKey))
	for _, w := range byKey {
		out = append(out, *w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, gone, nil
}

// ObjectProblem says what is wrong with a wanted artifact's S3 object, "" when nothing is:
// missing, a size other than the version's code size, a checksum S3 recorded that is not the
// version's SHA-256, or a storage class that must be restored before it can be read.
func ObjectProblem(w Wanted, obj inventory.Object, found bool) string {
	switch {
	case !found:
		return "missing"
	case w.CodeSize > 0 && obj.Size != w.CodeSize:
		return fmt.Sprintf("its size is %d bytes, the version's code %d", obj.Size, w.CodeSize)
	case DigestRecorded(obj) && obj.ChecksumSHA256 != w.CodeSha256:
		// A composite checksum (multipart, "…-N") is not the object's SHA-256: not comparable.
		return fmt.Sprintf("S3 records SHA-256 %s, the version's code is %s", obj.ChecksumSHA256, w.CodeSha256)
	case Archived(obj.StorageClass):
		return fmt.Sprintf("it is in %s: it must be restored before Lambda can read it", obj.StorageClass)
	case ArchivedTier(obj.ArchiveStatus):
		return fmt.Sprintf("it is in %s's %s tier: it must be restored before Lambda can read it", obj.StorageClass, obj.ArchiveStatus)
	}
	return ""
}

// ArchivedTier reports whether an INTELLIGENT_TIERING object's archive status (HeadObject's
// x-amz-archive-status) makes it unreadable: the Archive Access and Deep Archive Access tiers
// are opt-in, and GetObject of an object in them fails (InvalidObjectState) until a
// RestoreObject brings it back, which Lambda never does.
func ArchivedTier(status string) bool {
	return status == "ARCHIVE_ACCESS" || status == "DEEP_ARCHIVE_ACCESS"
}

// DigestRecorded reports whether S3 recorded the object's own SHA-256 (not a multipart
// upload's composite checksum, "…-N"), so ObjectProblem compared it with the version's.
func DigestRecorded(obj inventory.Object) bool {
	return obj.ChecksumSHA256 != "" && !strings.Contains(obj.ChecksumSHA256, "-")
}

// HashAtMost is the largest object doctor downloads and hashes when S3 recorded no SHA-256 of
// it (50 MiB, Lambda's limit for a zip uploaded directly): above it, doctor reports the digest
// as unverified rather than read every large artifact on every run.
const HashAtMost = 50 << 20

// Archived reports whether objects of a storage class cannot be read without a restore first.
// GLACIER (Flexible Retrieval) and DEEP_ARCHIVE need a RestoreObject of minutes to hours, which
// Lambda's UpdateFunctionCode never does; GLACIER_IR (Instant Retrieval), the IA classes and
// INTELLIGENT_TIERING's automatic tiers are read in milliseconds, so a rollback still works
// (at a retrieval fee).
func Archived(class string) bool {
	return class == "GLACIER" || class == "DEEP_ARCHIVE"
}

// Severity says whether a finding stops a rollback.
type Severity string

// Severities, from worst.
const (
	Blocking Severity = "error"   // a rollback would fail
	Warning  Severity = "warning" // a rollback works today, but something could stop the next one
	Info     Severity = "info"
)

// LifecycleRisk is what one lifecycle rule can do to the artifacts.
type LifecycleRisk struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	// Does says what the rule does to objects under the prefix, and why that matters.
	Does string `json:"does"`
}

// LifecycleRisks reads the bucket's lifecycle rules against the artifact prefix: which enabled
// rules can expire or archive artifacts.
//
//   - A rule applies when its prefix can match an artifact key (RuleCanMatch): "" or
//     "releases/" covers every artifact under "releases/shop/", "releases/shop/ab" some of
//     them, and "releases/shop/tmp/" none (no artifact name begins "tmp/").
//   - Tag filters: Aviary does not tag artifacts, so such a rule touches none today, but it
//     applies to any artifact someone tags: a warning, never silence.
//   - Size filters are compared with the artifacts' actual sizes: a rule that matches none of
//     them today is a warning (the next, larger or smaller, artifact may match), one that
//     matches some is as bad as no filter.
//   - Expiration (Days or Date) deletes current objects: blocking. ExpiredObjectDeleteMarker
//     alone only removes delete markers with no versions left under them: harmless.
//   - Transitions to GLACIER or DEEP_ARCHIVE make objects unreadable until restored: blocking;
//     to GLACIER_IR or the IA classes they stay instantly readable: not reported.
//   - NoncurrentVersionExpiration and noncurrent transitions touch only versions that are no
//     longer current, so no rollback reads them; they matter only in a versioned bucket, where
//     those versions are what recovers an artifact deleted by mistake: a warning there, nothing
//     in an unversioned bucket.
func LifecycleRisks(rules []inventory.LifecycleRule, prefix string, versioned bool, sizes []int64) []LifecycleRisk {
	p := strings.TrimLeft(prefix, "/")
	if p = strings.Trim(p, "/"); p != "" {
		p += "/"
	}
	var out []LifecycleRisk
	for _, r := range rules {
		if !r.Enabled {
			continue
		}
		if !RuleCanMatch(r.Prefix, p) {
			continue
		}
		name := r.ID
		if name == "" {
			name = "(a rule without an ID)"
		}
		var does []string
		sev := Info
		raise := func(s Severity) {
			if s == Blocking || sev == Info {
				sev = s
			}
		}
		switch {
		case r.ExpirationDays > 0:
			does = append(does, fmt.Sprintf("expires (deletes) artifacts %d days after their upload", r.ExpirationDays))
			raise(Blocking)
		case r.ExpirationDate != nil:
			does = append(does, fmt.Sprintf("expires (deletes) artifacts from %s", r.ExpirationDate.UTC().Format(time.DateOnly)))
			raise(Blocking)
		}
		for _, t := range r.Transitions {
			if !Archived(t.StorageClass) {
				continue
			}
			when := fmt.Sprintf("%d days after their upload", t.Days)
			if t.Date != nil {
				when = "from " + t.Date.UTC().Format(time.DateOnly)
			}
			does = append(does, fmt.Sprintf("archives artifacts to %s %s (unreadable by Lambda until restored)", t.StorageClass, when))
			raise(Blocking)
		}
		if versioned {
			if r.NoncurrentExpires {
				does = append(does, fmt.Sprintf("deletes noncurrent versions %d days after they become noncurrent: an artifact deleted by mistake can be recovered only until then", r.NoncurrentExpirationDays))
				raise(Warning)
			}
			for _, t := range r.NoncurrentTransitions {
				if Archived(t.StorageClass) {
					does = append(does, fmt.Sprintf("archives noncurrent versions to %s after %d days: recovering a deleted artifact then needs a restore first", t.StorageClass, t.Days))
					raise(Warning)
				}
			}
		}
		if len(does) == 0 {
			continue // ExpiredObjectDeleteMarker alone, instant-access transitions, an unversioned bucket's noncurrent actions
		}
		var scope []string
		if len(r.Tags) > 0 {
			var tags []string
			for k, v := range r.Tags {
				tags = append(tags, k+"="+v)
			}
			sort.Strings(tags)
			scope = append(scope, fmt.Sprintf("only objects tagged %s: Aviary tags no artifact, but any artifact someone tags so is exposed", strings.Join(tags, ", ")))
			if sev == Blocking {
				sev = Warning
			}
		}
		if r.SizeGreaterThan > 0 || r.SizeLessThan > 0 {
			matched := 0
			for _, s := range sizes {
				if (r.SizeGreaterThan == 0 || s > r.SizeGreaterThan) && (r.SizeLessThan == 0 || s < r.SizeLessThan) {
					matched++
				}
			}
			bound := sizeBound(r.SizeGreaterThan, r.SizeLessThan)
			if matched == 0 && len(sizes) > 0 {
				scope = append(scope, fmt.Sprintf("only objects %s: none of the %d artifacts today, but the next one may be", bound, len(sizes)))
				if sev == Blocking {
					sev = Warning
				}
			} else {
				scope = append(scope, fmt.Sprintf("objects %s: %d of the %d artifacts", bound, matched, len(sizes)))
			}
		}
		if r.Prefix != p && strings.HasPrefix(r.Prefix, p) {
			scope = append(scope, fmt.Sprintf("the artifacts whose keys start with %q", r.Prefix))
		}
		text := strings.Join(does, "; ")
		if len(scope) > 0 {
			text += " (" + strings.Join(scope, "; ") + ")"
		}
		out = append(out, LifecycleRisk{Rule: name, Severity: sev, Does: text})
	}
	return out
}

// RuleCanMatch reports whether a lifecycle rule's prefix can match an artifact key under the
// artifact prefix p ("" or ending in "/"): a rule prefix that p begins with covers every
// artifact; a longer one only when what follows p could begin an artifact's name, <64 lowercase
// hex digits>.zip ("releases/shop/ab" can, "releases/shop/logs/" or "releases/shop/x" cannot).
func RuleCanMatch(rulePrefix, p string) bool {
	if strings.HasPrefix(p, rulePrefix) {
		return true
	}
	rest, ok := strings.CutPrefix(rulePrefix, p)
	if !ok {
		return false
	}
	hexPart, ext := rest, ""
	if len(rest) > 64 {
		hexPart, ext = rest[:64], rest[64:]
	}
	for _, c := range hexPart {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return strings.HasPrefix(".zip", ext)
}

func sizeBound(gt, lt int64) string {
	switch {
	case gt > 0 && lt > 0:
		return fmt.Sprintf("larger than %d and smaller than %d bytes", gt, lt)
	case gt > 0:
		return fmt.Sprintf("larger than %d bytes", gt)
	}
	return fmt.Sprintf("smaller than %d bytes", lt)
}

// CodeStorageWarnAt is the share of the Lambda code storage quota above which doctor warns.
const CodeStorageWarnAt = 0.8

// CodeStorageProblem says whether the account's code storage stops or threatens the next deploy
// (a deploy publishes a version, which adds its code to the total; a full quota refuses it).
func CodeStorageProblem(cs inventory.CodeStorage) (Severity, string) {
	if cs.Limit <= 0 {
		return Info, fmt.Sprintf("%s of Lambda code storage used (no quota reported)", Bytes(cs.Used))
	}
	share := float64(cs.Used) / float64(cs.Limit)
	text := fmt.Sprintf("%s of %s Lambda code storage used (%.0f%%)", Bytes(cs.Used), Bytes(cs.Limit), share*100)
	switch {
	case cs.Used >= cs.Limit:
		return Blocking, text
	case share >= CodeStorageWarnAt:
		return Warning, text
	}
	return Info, text
}

// Bytes prints a byte count for people.
func Bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
