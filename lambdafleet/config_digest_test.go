package lambdafleet_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/aviary-deploy/aviary/lambdafleet"
	"github.com/aviary-deploy/aviary/release"
)

// TestConfigurationDigestIsSlow: the store keeps a digest of what ${VAR} resolved to, beside its
// salt; a fast hash would let whoever reads the store try guesses of a weak secret by the
// billion, so it is a key derivation (PBKDF2), and a digest recorded the old way still checks.
func TestConfigurationDigestIsSlow(t *testing.T) {
	env := map[string]string{"SHOP_TOKEN": "hunter2"}
	f := &lambdafleet.Fleet{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	tmpl := release.Settings{Environment: map[string]string{"TOKEN": "${SHOP_TOKEN}"}}
	c, _, err := f.PrepareConfiguration(context.Background(), tmpl)
	if err != nil {
		t.Fatal(err)
	}
	fast := sha256.Sum256([]byte(c.Salt + fmt.Sprintf("%q=%q;", "TOKEN", "hunter2")))
	if c.Digest == hex.EncodeToString(fast[:]) {
		t.Fatalf("the digest is a plain salted SHA-256 of the secret: %s", c.Digest)
	}
	if _, err := f.ResolveConfiguration(context.Background(), c); err != nil {
		t.Errorf("the same value at publish: %v", err)
	}
	env["SHOP_TOKEN"] = "other"
	if _, err := f.ResolveConfiguration(context.Background(), c); err == nil {
		t.Error("another value at publish was accepted")
	}
	// A release recorded before: its salted SHA-256 still checks.
	env["SHOP_TOKEN"] = "hunter2"
	old := *c
	old.Digest = hex.EncodeToString(fast[:])
	if _, err := f.ResolveConfiguration(context.Background(), &old); err != nil {
		t.Errorf("a digest recorded the old way: %v", err)
	}
}
