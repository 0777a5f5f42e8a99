package release_test

import (
	"reflect"
	"testing"

	"github.com/aviary-deploy/aviary/release"
)

// Only managed fields are compared; secret and secret-looking values are masked.
func TestSettingsChanges(t *testing.T) {
	have := &release.Settings{
		Environment: map[string]string{"GREETING": "hello", "API_TOKEN": "old-token", "FROM_TF": "x", "DSN_URL": "same"},
		MemorySize:  128, Timeout: 3, Layers: []string{}, Architectures: []string{"x86_64"},
	}
	want := release.Settings{
		Environment: map[string]string{"GREETING": "bonjour", "API_TOKEN": "new-token", "DB": "pw", "DSN_URL": "same"},
		MemorySize:  256,
		Secret:      map[string]bool{"DB": true},
	}
	got := want.Changes(have)
	exp := []release.FieldChange{
		{Field: "environment.API_TOKEN", Old: "***", New: "***", Masked: true},
		{Field: "environment.DB", New: "***", Masked: true},
		{Field: "environment.FROM_TF", Old: "***", Masked: true},
		{Field: "environment.GREETING", Old: "hello", New: "bonjour"},
		{Field: "memory", Old: "128", New: "256"},
	}
	if !reflect.DeepEqual(exp, got) {
		t.Errorf("Changes:\n got %+v\nwant %+v", got, exp)
	}
	for _, c := range got {
		for _, secret := range []string{"old-token", "new-token", "pw", "x"} {
			if c.Old == secret || c.New == secret {
				t.Errorf("%s shows the secret %q", c.Field, secret)
			}
		}
	}
	if got, want := got[1].String(), "environment.DB: (set, masked)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	// A variable the manifest drops was set outside it (Terraform, the console): its value is
	// not shown, whatever its name, since plans land in CI logs and pull requests.
	if got, want := got[2].String(), "environment.FROM_TF: (removed)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	// The same settings: nothing to change; timeout is not managed here.
	same := release.Settings{Environment: map[string]string{"A": "1"}}
	if cs := same.Changes(&release.Settings{Environment: map[string]string{"A": "1"}, Timeout: 30}); len(cs) != 0 {
		t.Errorf("unchanged settings: %v", cs)
	}
}
