package retention

import (
	"strings"
	"testing"
	"time"
)

func TestIsImageCode(t *testing.T) {
	for code, want := range map[string]bool{
		strings.Repeat("ab", 32):                       true,
		"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=": false,
		strings.Repeat("AB", 32):                       false,
		"":                                             false,
	} {
		if got := IsImageCode(code); got != want {
			t.Errorf("IsImageCode(%q) = %v, want %v", code, got, want)
		}
	}
}

func TestImageRisks(t *testing.T) {
	now := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	need := RepoImage{Digest: "sha256:need", Tags: []string{"v1"}, PushedAt: now.Add(-10 * day)}
	all := []RepoImage{need,
		{Digest: "sha256:b", Tags: []string{"v2"}, PushedAt: now.Add(-5 * day)},
		{Digest: "sha256:c", PushedAt: now.Add(-2 * day)},
	}
	policy := func(rules string) ImagePolicy {
		p, err := ParseImagePolicy(`{"rules":[` + rules + `]}`)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	rule := func(prio int, sel string) string {
		return `{"rulePriority":` + string(rune('0'+prio)) + `,"selection":` + sel + `,"action":{"type":"expire"}}`
	}
	for _, tc := range []struct {
		name  string
		rules string
		want  []string // severity: rule
	}{
		{"any count: a tagged digest is expired all the same", rule(1, `{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":2}`), []string{"error 1"}},
		{"any count not yet reached", rule(1, `{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5}`), []string{"warning 1"}},
		{"untagged rule: once the tag moves", rule(1, `{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1}`), []string{"warning 1"}},
		{"tagged on another prefix: safe", rule(1, `{"tagStatus":"tagged","tagPrefixList":["dev-"],"countType":"imageCountMoreThan","countNumber":1}`), nil},
		{"days passed", rule(1, `{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"sinceImagePushed","countUnit":"days","countNumber":7}`), []string{"error 1"}},
		{"a higher rule shields it", rule(1, `{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":9}`) + "," +
			rule(2, `{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1}`), []string{"warning 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, r := range ImageRisks(policy(tc.rules), all, need, now) {
				got = append(got, string(r.Severity)+" "+string(rune('0'+r.Rule)))
			}
			if strings.Join(got, ";") != strings.Join(tc.want, ";") {
				t.Errorf("risks %v, want %v", got, tc.want)
			}
		})
	}
}
