package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/alecthomas/kong"
)

type completionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish" help:"The shell: bash, zsh or fish."`
}

func (c *completionCmd) Help() string {
	return `Prints a script that completes aviary's commands, flags and flag values, made from the same
model that parses the command line. Load it in your shell's start-up file:

  bash:  source <(aviary completion bash)        (in ~/.bashrc)
  zsh:   source <(aviary completion zsh)         (in ~/.zshrc, after compinit)
  fish:  aviary completion fish > ~/.config/fish/completions/aviary.fish`
}

func (c *completionCmd) Run(e *env, app *kong.Application) error {
	cmds := completionModel(app.Node)
	switch c.Shell {
	case "bash":
		return bashCompletion(e.stdout, cmds)
	case "zsh":
		return zshCompletion(e.stdout, cmds)
	default:
		return fishCompletion(e.stdout, cmds)
	}
}

// completeCmd is a command as completion sees it: its path ("" for aviary itself, "store init"),
// its subcommands and its flags.
type completeCmd struct {
	path  string
	help  string
	subs  []string
	flags []completeFlag
}

type completeFlag struct {
	long   string
	short  rune
	help   string
	values []string // an enum's values
	isBool bool
}

// completionModel lists every visible command with the flags it takes (its parents' included).
func completionModel(root *kong.Node) []completeCmd {
	var out []completeCmd
	var walk func(n *kong.Node, path string, inherited []completeFlag)
	walk = func(n *kong.Node, path string, inherited []completeFlag) {
		c := completeCmd{path: path, help: n.Help, flags: append([]completeFlag(nil), inherited...)}
		for _, f := range n.Flags {
			if f.Hidden {
				continue
			}
			cf := completeFlag{long: f.Name, short: f.Short, help: firstSentence(f.Help), isBool: f.IsBool()}
			if f.Enum != "" {
				for _, v := range strings.Split(f.Enum, ",") {
					cf.values = append(cf.values, strings.TrimSpace(v))
				}
			}
			c.flags = append(c.flags, cf)
		}
		sort.Slice(c.flags, func(i, j int) bool { return c.flags[i].long < c.flags[j].long })
		for _, ch := range n.Children {
			if ch.Hidden || ch.Type != kong.CommandNode {
				continue
			}
			c.subs = append(c.subs, ch.Name)
		}
		out = append(out, c)
		for _, ch := range n.Children {
			if ch.Hidden || ch.Type != kong.CommandNode {
				continue
			}
			walk(ch, strings.TrimSpace(path+" "+ch.Name), c.flags)
		}
	}
	walk(root, "", nil)
	return out
}

func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSuffix(s, ".")
}

func flagWords(fs []completeFlag) string {
	var w []string
	for _, f := range fs {
		w = append(w, "--"+f.long)
		if f.short != 0 {
			w = append(w, "-"+string(f.short))
		}
	}
	return strings.Join(w, " ")
}

func bashCompletion(w io.Writer, cmds []completeCmd) error {
	var b strings.Builder
	b.WriteString(`# bash completion for aviary (aviary completion bash)
_aviary() {
    local cur prev path="" w
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    for w in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
        case "$w" in -*) ;; *) case " $(_aviary_subs "$path") " in *" $w "*) path="${path:+$path }$w" ;; esac ;; esac
    done
    case "$prev" in
`)
	seen := map[string]bool{}
	for _, c := range cmds {
		for _, f := range c.flags {
			if len(f.values) == 0 || seen[f.long] {
				continue
			}
			seen[f.long] = true
			names := "--" + f.long
			if f.short != 0 {
				names += "|-" + string(f.short)
			}
			fmt.Fprintf(&b, "        %s) COMPREPLY=($(compgen -W %q -- \"$cur\")); return ;;\n", names, strings.Join(f.values, " "))
		}
	}
	b.WriteString(`    esac
    local words
    case "$path" in
`)
	for _, c := range cmds {
		fmt.Fprintf(&b, "        %q) words=%q ;;\n", c.path, strings.TrimSpace(strings.Join(c.subs, " ")+" "+flagWords(c.flags)))
	}
	b.WriteString(`    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
_aviary_subs() {
    case "$1" in
`)
	for _, c := range cmds {
		if len(c.subs) > 0 {
			fmt.Fprintf(&b, "        %q) echo %q ;;\n", c.path, strings.Join(c.subs, " "))
		}
	}
	b.WriteString(`    esac
}
complete -F _aviary aviary
`)
	_, err := io.WriteString(w, b.String())
	return err
}

// zshCompletion uses bash's script through bashcompinit: one script to keep right.
func zshCompletion(w io.Writer, cmds []completeCmd) error {
	if _, err := io.WriteString(w, "#compdef aviary\n# zsh completion for aviary (aviary completion zsh)\nautoload -U +X bashcompinit && bashcompinit\n"); err != nil {
		return err
	}
	return bashCompletion(w, cmds)
}

func fishCompletion(w io.Writer, cmds []completeCmd) error {
	var b strings.Builder
	b.WriteString("# fish completion for aviary (aviary completion fish)\ncomplete -c aviary -f\n")
	for _, c := range cmds {
		cond := "__fish_use_subcommand"
		if c.path != "" {
			cond = "__fish_seen_subcommand_from " + strings.Fields(c.path)[len(strings.Fields(c.path))-1]
		}
		if len(c.subs) > 0 {
			for _, s := range c.subs {
				fmt.Fprintf(&b, "complete -c aviary -n '%s' -a %s\n", cond, s)
			}
		}
		if c.path == "" {
			for _, f := range c.flags {
				fishFlag(&b, "", f)
			}
			continue
		}
		for _, f := range c.flags {
			fishFlag(&b, cond, f)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func fishFlag(b *strings.Builder, cond string, f completeFlag) {
	fmt.Fprintf(b, "complete -c aviary")
	if cond != "" {
		fmt.Fprintf(b, " -n '%s'", cond)
	}
	fmt.Fprintf(b, " -l %s", f.long)
	if f.short != 0 {
		fmt.Fprintf(b, " -s %c", f.short)
	}
	if !f.isBool {
		b.WriteString(" -r")
	}
	if len(f.values) > 0 {
		fmt.Fprintf(b, " -a '%s'", strings.Join(f.values, " "))
	}
	fmt.Fprintf(b, " -d '%s'\n", strings.ReplaceAll(f.help, "'", `\'`))
}
