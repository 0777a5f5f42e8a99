package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aviary-deploy/aviary/sandbox"
)

// TestDeployReadsWhileItBuilds: a deploy reads every function and alias (the plan's calls,
// paced by the Lambda quota) while its zips build, not after. One function's build command
// finishes only once the sandbox has answered the reads of every alias; built first and read
// after, the deploy would fail with the command's complaint.
func TestDeployReadsWhileItBuilds(t *testing.T) {
	f := newFleet(t, 3, quick, "      all-at-once")
	marker := filepath.Join(t.TempDir(), "every-alias-read")
	var mu sync.Mutex
	read := map[string]bool{}
	f.srv.OnRequest(func(r sandbox.Request) {
		if r.Service != "lambda" || r.Operation != "GetAlias" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, n := range f.names {
			if strings.Contains(r.Path, "/functions/"+f.fn(n)+"/aliases/") {
				read[n] = true
			}
		}
		if len(read) == len(f.names) {
			os.WriteFile(marker, nil, 0o644)
		}
	})
	boot := filepath.Join(f.dir, "functions", f.names[0], "bootstrap")
	command := fmt.Sprintf(`for i in $(seq 600); do [ -f %[1]q ] && break; sleep 0.1; done
[ -f %[1]q ] || { echo "no alias was read while this built" >&2; exit 1; }
cp %[2]q "$AVIARY_OUT/bootstrap" && echo built > "$AVIARY_OUT/stamp.txt"`, marker, boot)
	manifest := filepath.Join(f.dir, "aviary.yaml")
	raw, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	block := "build:\n      command: |\n        " + strings.ReplaceAll(command, "\n", "\n        ") + "\n"
	raw = []byte(strings.Replace(string(raw), "dir: functions/"+f.names[0]+"\n", block, 1))
	if err := os.WriteFile(manifest, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	f.stampAll("1")

	if code, out, errs := f.aviary("deploy", "-e", "production"); code != 0 {
		t.Fatalf("deploy: exit %d\n%s\n%s", code, out, errs)
	}
	if got, want := f.served(f.names[0]), "built"; got != want {
		t.Errorf("%s serves stamp %q, want %q (its build's)", f.names[0], got, want)
	}
	if got, want := f.served(f.names[1]), "1"; got != want {
		t.Errorf("%s serves stamp %q, want %q", f.names[1], got, want)
	}
}
