package manifest_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aviary-deploy/aviary/manifest"
)

// FuzzParse feeds the parser arbitrary bytes: it must not panic, must answer every input with a
// manifest or a *manifest.Error whose problems name the file, and must not expand aliases past
// its budget (the seeds include a bomb that would take minutes to expand; the fuzzer reports an
// input that hangs). Run it longer with
//
//	go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 10m ./manifest
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		good, checked, gated, bomb(10), bomb(4),
		good + "---\nservice: other\n", good + "---\n",
		"x: &x [*x]\n", "a: &a {b: *a}\n", "<<: *nowhere\n", "service: [shop\n", "", "---\n---\n",
		strings.Replace(good, "weight: 10%", "weight: 60%", 1),
		strings.Replace(good, "    dir: static", "    dir: ../../..", 1),
	} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "static"), 0o755); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "built.zip"), []byte("zip"), 0o644); err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(dir, "aviary.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<14 {
			t.Skip("manifests are small; long inputs only slow the fuzzer down")
		}
		m, err := manifest.Parse(path, data)
		if err == nil {
			if m == nil || m.Service == "" || len(m.Functions) == 0 || len(m.Environments) == 0 {
				t.Fatalf("Parse accepted %q as %+v", data, m)
			}
			for _, env := range m.Environments {
				for i, s := range env.Strategy.Steps {
					if s.Weight <= 0 || s.Weight >= 1 || i > 0 && s.Weight <= env.Strategy.Steps[i-1].Weight {
						t.Fatalf("Parse accepted steps %+v from %q", env.Strategy.Steps, data)
					}
				}
			}
			return
		}
		var me *manifest.Error
		if !errors.As(err, &me) || len(me.Problems) == 0 {
			t.Fatalf("Parse(%q) = %v, want a *manifest.Error with problems", data, err)
		}
		for _, p := range me.Problems {
			if p.File != path || p.Message == "" {
				t.Fatalf("problem %+v does not say where or what", p)
			}
		}
	})
}
