package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/release"
)

// TestKillAnywhere kills a real `aviary deploy` process (SIGKILL) at many points — after each of
// its writes, and in the middle of bakes — then finishes the release with `aviary resume` or
// `aviary rollback`. Every time, every function ends consistent (all on the new version or all on
// the previous one, no extra weights left behind), the lock is free, and the audit trail holds
// every transition.
func TestKillAnywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a deploy at many points; run without -short")
	}
	f := newFleet(t, 3, quick, "      canary:\n        - weight: 10%\n          bake: 400ms\n        - weight: 50%\n          bake: 400ms")
	f.stampAll("1")
	if code, out, errs := f.aviary("deploy", "-e", "production", "--api-rate", "200"); code != 0 {
		t.Fatalf("first release: %d\n%s\n%s", code, out, errs)
	}
	f.lastPromotedStamp = "1"
	// 3 functions × (code update + 2 steps + promotion): 12 writes in a clean run.
	type point struct {
		afterWrites int
		midBake     int // kill this long into step N's bake (1-based), instead
		finish      string
	}
	var points []point
	for k := 1; k <= 12; k++ {
		finish := "resume"
		if k%2 == 1 {
			finish = "rollback"
		}
		points = append(points, point{afterWrites: k, finish: finish})
	}
	points = append(points, point{midBake: 1, finish: "resume"}, point{midBake: 2, finish: "rollback"}, point{midBake: 1, finish: "rollback"}, point{midBake: 2, finish: "resume"},
		// After the last write: the release may be recorded promoted with its audit entries and
		// lock left behind; rolling it back from there still ends consistent.
		point{afterWrites: 12, finish: "rollback"})

	for i, p := range points {
		name := fmt.Sprintf("after %d writes, then %s", p.afterWrites, p.finish)
		if p.midBake > 0 {
			name = fmt.Sprintf("mid-bake of step %d, then %s", p.midBake, p.finish)
		}
		t.Run(name, func(t *testing.T) {
			stamp := fmt.Sprint(100 + i)
			before := f.latest()
			f.stampAll(stamp)
			f.srv.ResetRequests()
			cmd := exec.Command(built.aviary, "deploy", "-e", "production", "--api-rate", "200")
			cmd.Dir = f.dir
			cmd.Env = os.Environ()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			killed := false
			deadline := time.Now().Add(30 * time.Second)
		watch:
			for time.Now().Before(deadline) {
				select {
				case <-exited:
					break watch
				default:
				}
				if p.afterWrites > 0 {
					n := 0
					for _, c := range writes(f.srv.Requests()) {
						n += c
					}
					if n >= p.afterWrites {
						cmd.Process.Signal(syscall.SIGKILL)
						killed = true
						<-exited
						break
					}
				} else if r := f.latest(); r.ID != before.ID && r.Phase == release.Shifting && r.Step == p.midBake-1 && !r.StepStarted.IsZero() {
					time.Sleep(150 * time.Millisecond)
					cmd.Process.Signal(syscall.SIGKILL)
					killed = true
					<-exited
					break
				}
				time.Sleep(time.Millisecond)
			}
			if !killed {
				t.Fatalf("the deploy ended before the kill point")
			}
			r := f.latest()
			if r.ID == before.ID {
				t.Fatalf("killed before the release was recorded")
			}
			t.Logf("killed at %s", r.Describe())

			code, out, errs := f.aviary(p.finish, r.ID)
			if code != 0 {
				t.Fatalf("aviary %s %s: exit %d\n%s\n%s", p.finish, r.ID, code, out, errs)
			}
			st := f.openStore()
			final, err := st.GetRelease(context.Background(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := release.Promoted
			if p.finish == "rollback" {
				want = release.RolledBack
			}
			if final.Phase != want {
				t.Fatalf("after %s: %s", p.finish, final.Describe())
			}
			wantStamp := stamp
			if want == release.RolledBack {
				wantStamp = f.lastPromotedStamp
			}
			for i, n := range f.names {
				v, w := f.alias(n)
				fn := final.Functions[i]
				wantV := fn.New
				if want == release.RolledBack {
					wantV = fn.Previous
				}
				if v != wantV || w != nil {
					t.Errorf("%s: alias at %s with weights %v, want version %s alone", n, v, w, wantV)
				}
				if got := f.served(n); got != wantStamp {
					t.Errorf("%s serves stamp %q, want %q", n, got, wantStamp)
				}
			}
			if l, _ := st.GetLock(context.Background(), "shop/production"); l != nil {
				t.Errorf("the lock is still held: %+v", l)
			}
			auditChain(t, st, final)
			if want == release.Promoted {
				f.lastPromotedStamp = stamp
			}
		})
	}
}
