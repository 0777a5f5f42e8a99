package configvalue_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aviary-deploy/aviary/configvalue"
)

type fake map[configvalue.Ref]configvalue.Resolved

func (f fake) Resolve(_ context.Context, r configvalue.Ref) (configvalue.Resolved, error) {
	v, ok := f[r]
	if !ok {
		return configvalue.Resolved{}, errors.New("missing " + r.String())
	}
	return v, nil
}

func TestFill(t *testing.T) {
	res := fake{
		{Kind: configvalue.Env, Name: "SHA"}:    {Value: "abc", Secret: true},
		{Kind: configvalue.SSM, Name: "/db/pw"}: {Value: "pw", Version: "3"},
	}
	for in, want := range map[string]struct {
		out    string
		secret bool
	}{
		"plain":                       {"plain", false},
		"v-${SHA}":                    {"v-abc", true},
		"u:{{ssm:/db/pw}}@h":          {"u:pw@h", false},
		"{{ ssm:/db/pw }}/${SHA}/end": {"pw/abc/end", true},
	} {
		got, secret, err := configvalue.Fill(context.Background(), in, res)
		if err != nil || got != want.out || secret != want.secret {
			t.Errorf("Fill(%q) = %q, %v, %v; want %q, %v", in, got, secret, err, want.out, want.secret)
		}
	}
	if _, _, err := configvalue.Fill(context.Background(), "${NOPE}", res); err == nil {
		t.Error("a missing reference was filled")
	}
	for _, bad := range []string{"${A B}", "${}", "{{ssm:}}", "{{ssm:a b}}"} {
		if _, err := configvalue.Refs(bad); err == nil {
			t.Errorf("Refs(%q) accepted", bad)
		}
	}
}
