package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestReadmeListsEveryCommand: the README's command table (the rows that start with `aviary …`)
// names exactly the CLI's commands, no more and no fewer.
func TestReadmeListsEveryCommand(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	// A row's first cell: `aviary store init --store URL` names "store init".
	row := regexp.MustCompile("^\\| `aviary ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)*)")
	var readme []string
	for _, line := range strings.Split(string(b), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		readme = append(readme, m[1])
	}
	var cli []string
	for path, n := range commands(t) {
		if path != "" && !slices.ContainsFunc(n.Children, func(c *kongNode) bool { return c.Type == kongCommand }) {
			cli = append(cli, path)
		}
	}
	slices.Sort(readme)
	slices.Sort(cli)
	if !slices.Equal(readme, cli) {
		t.Errorf("README.md's command table lists\n  %s\nthe CLI has\n  %s", strings.Join(readme, ", "), strings.Join(cli, ", "))
	}
}
