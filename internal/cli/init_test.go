package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/aviary-deploy/aviary/awsconfig"
	"github.com/aviary-deploy/aviary/manifest"
	"github.com/aviary-deploy/aviary/sandbox"
)

// TestInit writes manifests from the functions on a sandbox, by prefix and by tag, past the first
// page of ListFunctions, and never over an existing file without --force.
func TestInit(t *testing.T) {
	ctx := context.Background()
	srv, err := sandbox.Start(ctx, sandbox.Options{ControlRate: -1, UpdateDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_PROFILE", "")
	cfg, err := awsconfig.Sandbox(ctx, srv.URL, srv.Region)
	if err != nil {
		t.Fatal(err)
	}
	lc := lambda.NewFromConfig(cfg)
	zip, err := placeholderZip()
	if err != nil {
		t.Fatal(err)
	}
	create := func(name string, tags map[string]string) {
		t.Helper()
		if _, err := lc.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName: aws.String(name), Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
			Role: aws.String("arn:aws:iam::000000000000:role/r"), Code: &lambdatypes.FunctionCode{ZipFile: zip}, Tags: tags,
		}); err != nil {
			t.Fatal(err)
		}
	}
	// More than a page of others first (ListFunctions gives 50 a page), so ours are on the second.
	for i := range 55 {
		create(fmt.Sprintf("aaa-noise-%02d", i), nil)
	}
	create("shop-api-staging", map[string]string{"team": "shop"})
	create("shop-orders-staging", map[string]string{"team": "shop"})
	create("shop-legacy-staging", map[string]string{"team": "other"})

	dir := t.TempDir()
	run := func(args ...string) (int, string) {
		var out, errs bytes.Buffer
		code := Main(ctx, args, &out, &errs)
		return code, out.String() + errs.String()
	}
	check := func(file string, want map[string]string) {
		t.Helper()
		m, err := manifest.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		env, err := m.Environment("staging")
		if err != nil {
			t.Fatal(err)
		}
		if got := env.Strategy.Name; got != "all-at-once" {
			t.Errorf("strategy %q, want all-at-once", got)
		}
		got := map[string]string{}
		for _, f := range m.Functions {
			got[f.Name] = m.FunctionName(env, f.Name)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) || m.Service != "shop" {
			b, _ := os.ReadFile(file)
			t.Fatalf("service %s, functions %v; want shop, %v\n%s", m.Service, got, want, b)
		}
	}

	byPrefix := filepath.Join(dir, "aviary.yaml")
	if code, out := run("init", "--prefix", "shop-", "-e", "staging", "-f", byPrefix); code != ExitOK {
		t.Fatalf("init --prefix exited %d: %s", code, out)
	}
	check(byPrefix, map[string]string{"api": "shop-api-staging", "orders": "shop-orders-staging", "legacy": "shop-legacy-staging"})
	before, _ := os.ReadFile(byPrefix)
	if code, out := run("init", "--prefix", "shop", "-e", "staging", "-f", byPrefix); code != ExitBadInput || !strings.Contains(out, "--force") {
		t.Fatalf("init over an existing manifest exited %d, want %d: %s", code, ExitBadInput, out)
	}
	if after, _ := os.ReadFile(byPrefix); !bytes.Equal(before, after) {
		t.Fatal("init without --force changed the existing manifest")
	}

	if code, out := run("init", "--tag", "team=shop", "-e", "staging", "-f", byPrefix, "--force"); code != ExitOK {
		t.Fatalf("init --tag --force exited %d: %s", code, out)
	}
	check(byPrefix, map[string]string{"api": "shop-api-staging", "orders": "shop-orders-staging"})

	if code, out := run("init", "--prefix", "nothing-", "-f", filepath.Join(dir, "none.yaml")); code != ExitBadInput {
		t.Fatalf("init matching nothing exited %d, want %d: %s", code, ExitBadInput, out)
	}
	if code, _ := run("init", "-f", filepath.Join(dir, "none.yaml")); code != ExitBadInput {
		t.Fatalf("init with neither --prefix nor --tag exited %d, want %d", code, ExitBadInput)
	}
}

func TestStartingManifestNames(t *testing.T) {
	for _, tc := range []struct {
		prefix, env string
		names       []string
		service     string
		want        []string // short names
	}{
		{"shop-", "prod", []string{"shop-api-prod", "shop-orders-prod"}, "shop", []string{"api", "orders"}},
		{"shop", "prod", []string{"shop-api", "shop-orders"}, "shop", []string{"api", "orders"}},
		{"shop-api", "prod", []string{"shop-api"}, "shop", []string{"api"}},
		{"", "dev", []string{"billing_charge_dev"}, "billing", []string{"charge"}},
		{"", "dev", []string{"pay-a", "pay-b"}, "pay", []string{"a", "b"}},
	} {
		t.Run(strings.Join(tc.names, ","), func(t *testing.T) {
			fns := make([]found, len(tc.names))
			for i, n := range tc.names {
				fns[i] = found{cfg: lambdatypes.FunctionConfiguration{FunctionName: aws.String(n), Runtime: lambdatypes.RuntimeProvidedal2023}}
			}
			doc, err := startingManifest(fns, tc.prefix, tc.env, "us-east-1")
			if err != nil {
				t.Fatal(err)
			}
			m, err := manifest.Parse("aviary.yaml", doc)
			if err != nil {
				t.Fatalf("%v\n%s", err, doc)
			}
			env, _ := m.Environment(tc.env)
			if m.Service != tc.service {
				t.Errorf("service %q, want %q", m.Service, tc.service)
			}
			for i, f := range fns {
				if f.short != tc.want[i] {
					t.Errorf("%s is %q, want %q", tc.names[i], f.short, tc.want[i])
				}
				if got := m.FunctionName(env, f.short); got != tc.names[i] {
					t.Errorf("%s maps back to %s\n%s", tc.names[i], got, doc)
				}
			}
		})
	}
}
