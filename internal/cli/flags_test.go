package cli

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// commands walks the visible command tree: every command node with its path ("" is aviary).
func commands(t *testing.T) map[string]*kong.Node {
	t.Helper()
	var a app
	p, err := newParser(&a, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*kong.Node{}
	var walk func(n *kong.Node, path string)
	walk = func(n *kong.Node, path string) {
		out[path] = n
		for _, c := range n.Children {
			if c.Type == kong.CommandNode && !c.Hidden {
				walk(c, strings.TrimSpace(path+" "+c.Name))
			}
		}
	}
	walk(p.Model.Node, "")
	return out
}

// help is what `aviary PATH --help` prints.
func help(t *testing.T, path string) string {
	t.Helper()
	var out, errs bytes.Buffer
	args := append(strings.Fields(path), "--help")
	if code := Main(context.Background(), args, &out, &errs); code != 0 {
		t.Fatalf("aviary %s: exit %d\n%s", strings.Join(args, " "), code, errs.String())
	}
	return out.String()
}

// TestEveryFlagHasAnEnvironmentVariable: every flag of every command can be set from an AVIARY_*
// variable, and that command's --help shows it. A deprecated alias (hidden) has none, so that
// its variable cannot mean two things.
func TestEveryFlagHasAnEnvironmentVariable(t *testing.T) {
	for path, n := range commands(t) {
		h := help(t, path)
		for _, f := range n.Flags {
			if f.Name == "help" || f.Name == "version" {
				continue
			}
			if f.Hidden {
				if len(f.Envs) != 0 {
					t.Errorf("aviary %s: the hidden --%s has variables %v: a deprecated alias must have none", path, f.Name, f.Envs)
				}
				continue
			}
			if len(f.Envs) != 1 || !strings.HasPrefix(f.Envs[0], "AVIARY_") {
				t.Errorf("aviary %s --%s: variables %v, want one AVIARY_* variable", path, f.Name, f.Envs)
				continue
			}
			if !strings.Contains(h, "($"+f.Envs[0]+")") {
				t.Errorf("aviary %s --help does not show $%s for --%s:\n%s", path, f.Envs[0], f.Name, h)
			}
		}
	}
}

// TestEnvironmentOnlyVariablesInHelp: the variables that are not flags are listed in the --help of
// every command they affect.
func TestEnvironmentOnlyVariablesInHelp(t *testing.T) {
	driving := []string{"deploy", "rollback", "promote", "resume", "approve"}
	affects := map[string][]string{
		"AVIARY_ACTOR":            driving,
		"AVIARY_HOST":             driving,
		"AVIARY_LOCK_LEASE":       driving,
		"AVIARY_PRE_APPROVE":      {"deploy", "plan"},
		"AVIARY_URL":              append([]string{"link", "serve"}, driving...),
		"AVIARY_LINK_SECRET":      append([]string{"link", "serve"}, driving...),
		"AVIARY_LINK_SECRET_FILE": append([]string{"link", "serve"}, driving...),
		"AVIARY_ADMIN_TOKEN":      {"serve"},
	}
	for v, cmds := range affects {
		for _, c := range cmds {
			if h := help(t, c); !strings.Contains(h, v) {
				t.Errorf("aviary %s --help does not name %s:\n%s", c, v, h)
			}
		}
	}
}

// TestOneMeaningPerFlag: a flag name has one type and one variable in every command (the
// sandbox's own address and region have their own variables), and --rate
// (invocations per second) is traffic's alone; control-plane calls are --api-rate everywhere.
func TestOneMeaningPerFlag(t *testing.T) {
	type meaning struct {
		typ  reflect.Type
		envs string
	}
	seen := map[string]meaning{}
	where := map[string]string{}
	for path, n := range commands(t) {
		for _, f := range n.Flags {
			if f.Hidden {
				continue
			}
			m := meaning{f.Target.Type(), strings.Join(f.Envs, ",")}
			if path == "sandbox" && (f.Name == "addr" || f.Name == "region") {
				// The emulator's own address and region: one exported for aviary serve's address
				// or the AWS clients' region must not move it.
				if m.envs != "AVIARY_SANDBOX_"+strings.ToUpper(f.Name) {
					t.Errorf("aviary sandbox --%s reads $%s, want its own $AVIARY_SANDBOX_%s", f.Name, m.envs, strings.ToUpper(f.Name))
				}
				continue
			}
			if prev, ok := seen[f.Name]; ok && prev != m {
				t.Errorf("--%s is %v ($%s) in aviary %s but %v ($%s) in aviary %s", f.Name, m.typ, m.envs, path, prev.typ, prev.envs, where[f.Name])
			}
			seen[f.Name], where[f.Name] = m, path
			if f.Name == "rate" && path != "traffic" {
				t.Errorf("aviary %s has --rate: only traffic's invocations per second are --rate (control-plane calls are --api-rate)", path)
			}
			if f.Short == 'o' && f.Name != "output" {
				t.Errorf("aviary %s: -o is --%s, want --output", path, f.Name)
			}
			if f.Short == 'f' && f.Name != "file" {
				t.Errorf("aviary %s: -f is --%s, want --file", path, f.Name)
			}
		}
	}
	for _, c := range []string{"deploy", "rollback", "promote", "resume", "approve", "plan"} {
		if !strings.Contains(help(t, c), "--api-rate") {
			t.Errorf("aviary %s has no --api-rate", c)
		}
	}
}

type kongNode = kong.Node

const kongCommand = kong.CommandNode
