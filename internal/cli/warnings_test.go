package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aviary-deploy/aviary/manifest"
)

func TestWarnEphemeralStore(t *testing.T) {
	for _, tc := range []struct {
		ci, store string
		warn      bool
	}{
		{"true", "sqlite://.aviary/state.db", true},
		{"1", "sqlite:///tmp/x.db", true},
		{"true", "dynamodb://aviary", false},
		{"", "sqlite://.aviary/state.db", false},
		{"false", "sqlite://.aviary/state.db", false},
	} {
		t.Run(tc.ci+" "+tc.store, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			var b bytes.Buffer
			warnEphemeralStore(&b, tc.store)
			if got := strings.Contains(b.String(), "use a DynamoDB store"); got != tc.warn {
				t.Fatalf("warned=%v, want %v: %q", got, tc.warn, b.String())
			}
			if tc.warn && !strings.Contains(b.String(), "loses") {
				t.Fatalf("the warning does not say why: %q", b.String())
			}
		})
	}
}

func TestWarnGateWithoutLinks(t *testing.T) {
	const doc = `service: s
artifacts: {bucket: bucket-b}
functions:
  api: {dir: .}
environments:
  gated:
    strategy: all-at-once
    approval: {timeout: 10m}
  preapproved:
    strategy: all-at-once
    approval: {timeout: 10m}
    pre_approve: true
  open:
    strategy: all-at-once
`
	m, err := manifest.Parse("aviary.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env, secret string
		warn        bool
	}{
		{"gated", "", true},
		{"gated", "0123456789abcdef0123", false},
		{"preapproved", "", false},
		{"open", "", false},
	} {
		t.Run(tc.env+"/"+tc.secret, func(t *testing.T) {
			t.Setenv("AVIARY_LINK_SECRET", tc.secret)
			t.Setenv("AVIARY_LINK_SECRET_FILE", "")
			env, err := m.Environment(tc.env)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			warnGateWithoutLinks(&b, env)
			if got := strings.Contains(b.String(), "aviary approve"); got != tc.warn {
				t.Fatalf("warned=%v, want %v: %q", got, tc.warn, b.String())
			}
		})
	}
}

// syncBuffer is a bytes.Buffer a command may write while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServeWithoutLinkSecretIsReadOnly(t *testing.T) {
	t.Setenv("AVIARY_LINK_SECRET", "")
	t.Setenv("AVIARY_LINK_SECRET_FILE", "")
	t.Setenv("AVIARY_ADMIN_TOKEN", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errs syncBuffer
	done := make(chan int, 1)
	store := "sqlite://" + filepath.Join(t.TempDir(), "state.db")
	go func() {
		done <- Main(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--store", store, "-f", filepath.Join(t.TempDir(), "none.yaml")}, &out, &errs)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "Links are off") {
		select {
		case code := <-done:
			t.Fatalf("serve exited %d before it said links are off; stdout %q, stderr %q", code, out.String(), errs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve never said links are off: %q", out.String())
		}
	}
	if !strings.Contains(out.String(), "read-only") {
		t.Fatalf("serve does not say the dashboard is read-only: %q", out.String())
	}
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("serve exited %d, want 0; stderr %q", code, errs.String())
	}
}
