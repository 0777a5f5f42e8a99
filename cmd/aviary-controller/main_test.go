package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
)

// A configuration error says what to set.
func TestConfigurationErrors(t *testing.T) {
	for _, tc := range []struct {
		name, store, lease, rate, want string
	}{
		{"no store", "", "", "", "AVIARY_STORE is not set"},
		{"not a store URL", "postgres://x", "", "", `AVIARY_STORE="postgres://x" is not a store URL`},
		{"a lease below a second", "sqlite://" + filepath.Join(t.TempDir(), "s.db"), "10ms", "", `AVIARY_LOCK_LEASE="10ms"`},
		{"a rate of nothing", "sqlite://" + filepath.Join(t.TempDir(), "s.db"), "", "0", `AVIARY_API_RATE="0"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AVIARY_STORE", tc.store)
			t.Setenv("AVIARY_LOCK_LEASE", tc.lease)
			t.Setenv("AVIARY_API_RATE", tc.rate)
			_, err := newController(context.Background(), slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("newController: %v, want %q", err, tc.want)
			}
		})
	}
	t.Setenv("AVIARY_STORE", "sqlite://"+filepath.Join(t.TempDir(), "s.db"))
	t.Setenv("AVIARY_LOCK_LEASE", "20s")
	t.Setenv("AVIARY_API_RATE", "")
	if _, err := newController(context.Background(), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("a good configuration: %v", err)
	}
}
