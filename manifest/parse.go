package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with a manifest, where it is.
type Problem struct {
	File    string
	Line    int
	Column  int
	Field   string
	Message string
}

func (p Problem) String() string {
	loc := p.File
	if p.Line > 0 {
		loc += fmt.Sprintf(":%d:%d", p.Line, p.Column)
	}
	if p.Field != "" {
		return fmt.Sprintf("%s: %s: %s", loc, p.Field, p.Message)
	}
	return fmt.Sprintf("%s: %s", loc, p.Message)
}

// Error lists every problem found in a manifest.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	if len(lines) == 1 {
		return lines[0]
	}
	return fmt.Sprintf("%d problems:\n  %s", len(lines), strings.Join(lines, "\n  "))
}

// Load reads and validates the manifest at path.
func Load(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no manifest at %s: write one (see aviary.schema.json) or pass --file", path)
		}
		return nil, err
	}
	return Parse(path, data)
}

var (
	nameRE        = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
	lambdaNameRE  = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	aliasRE       = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)
	bucketRE      = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	placeholderRE = regexp.MustCompile(`\{[^}]*\}`)
)

type parser struct {
	file     string
	dir      string
	problems []Problem
}

func (p *parser) problem(n *yaml.Node, field, format string, args ...any) {
	pr := Problem{File: p.file, Field: field, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		pr.Line, pr.Column = n.Line, n.Column
	}
	p.problems = append(p.problems, pr)
}

// Parse validates a manifest's bytes; path names it in problems and anchors relative paths.
func Parse(path string, data []byte) (*Manifest, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	p := &parser{file: path, dir: filepath.Dir(abs)}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && err != io.EOF {
		return nil, &Error{Problems: []Problem{notYAML(path, err)}}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, &Error{Problems: []Problem{{File: path, Message: "the manifest is empty"}}}
	}
	// A second document (after ---) would be ignored by a reader of the first: refuse it,
	// unless it is empty (a trailing --- hides nothing).
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == io.EOF:
	case err != nil:
		return nil, &Error{Problems: []Problem{notYAML(path, err)}}
	case len(next.Content) > 0 && !empty(next.Content[0]):
		return nil, &Error{Problems: []Problem{{File: path, Line: next.Line, Column: next.Column,
			Message: "a second YAML document (after ---): a manifest is one document; merge the two or remove the ---"}}}
	}
	root := doc.Content[0]
	if !p.checkAliases(root) {
		return nil, &Error{Problems: p.problems}
	}
	resolveAliases(root)
	m := p.manifest(root)
	if len(p.problems) > 0 {
		sort.SliceStable(p.problems, func(i, j int) bool { return p.problems[i].Line < p.problems[j].Line })
		return nil, &Error{Problems: p.problems}
	}
	m.Path = path
	return m, nil
}

// MaxAliasNodes is how many nodes YAML aliases (*name) may add to a manifest once expanded. A
// manifest that reuses a block of settings through anchors adds tens or hundreds; nested aliases
// can add billions from a few hundred bytes (the "billion laughs"), which would take minutes of
// CPU to walk. Past this budget the manifest is refused before anything walks the expansion.
const MaxAliasNodes = 10000

// checkAliases refuses an alias inside the node it names (its expansion never ends) and aliases
// that add more than MaxAliasNodes nodes to the document once expanded. It remembers each node's
// expanded size, so it visits each node of the document once, whatever the expansion would be.
func (p *parser) checkAliases(root *yaml.Node) bool {
	own := 0
	var count func(n *yaml.Node)
	count = func(n *yaml.Node) {
		own++
		for _, c := range n.Content {
			count(c)
		}
	}
	count(root)
	over := own + MaxAliasNodes + 1 // sizes are capped here: past it, the count no longer matters
	const visiting = -1
	sizes := map[*yaml.Node]int{}
	var culprit, cycle *yaml.Node // the first alias past the budget; an alias inside what it names
	var size func(n *yaml.Node) int
	size = func(n *yaml.Node) int {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		switch s, seen := sizes[n]; {
		case seen && s == visiting:
			return -1
		case seen:
			return s
		}
		sizes[n] = visiting
		total := 1
		for _, c := range n.Content {
			s := size(c)
			if s < 0 {
				if cycle == nil {
					cycle = c
				}
				s = over
			}
			if total += s; total >= over {
				if culprit == nil && c.Kind == yaml.AliasNode {
					culprit = c
				}
				total = over
				break
			}
		}
		sizes[n] = total
		return total
	}
	if size(root) < over && cycle == nil {
		return true
	}
	switch {
	case cycle != nil:
		p.problem(cycle, "", "the alias *%s is inside the node it names: its expansion never ends", cycle.Value)
	case culprit != nil:
		p.problem(culprit, "", "aliases (*%s here) expand the manifest by more than %d nodes, as a YAML bomb does: write the settings out or use fewer aliases", culprit.Value, MaxAliasNodes)
	default:
		p.problem(root, "", "aliases expand the manifest by more than %d nodes, as a YAML bomb does: write the settings out or use fewer aliases", MaxAliasNodes)
	}
	return false
}

func notYAML(path string, err error) Problem {
	line := 0
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) {
		msg = strings.Join(te.Errors, "; ")
	}
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
	}
	return Problem{File: path, Line: line, Message: "not valid YAML: " + strings.TrimPrefix(msg, "yaml: ")}
}

var lineRE = regexp.MustCompile(`line (\d+)`)

// empty reports whether a document's content is nothing at all (a null written as nothing).
func empty(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null" && n.Value == "" && n.Anchor == ""
}

// resolveAliases replaces YAML aliases (*name) by the nodes they stand for. checkAliases has
// bounded the expansion and ruled out cycles.
func resolveAliases(n *yaml.Node) {
	for i, c := range n.Content {
		for c.Kind == yaml.AliasNode && c.Alias != nil {
			c = c.Alias
		}
		n.Content[i] = c
		resolveAliases(c)
	}
}

// fields checks a mapping's keys against the known ones and returns the values by key.
func (p *parser) fields(n *yaml.Node, at string, known ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		p.problem(n, at, "must be a mapping (key: value lines), not %s", kindName(n))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := join(at, k.Value)
		if _, dup := out[k.Value]; dup {
			p.problem(k, field, "appears twice")
			continue
		}
		if !contains(known, k.Value) {
			msg := fmt.Sprintf("unknown field %q", k.Value)
			if s := suggest(k.Value, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else {
				msg += fmt.Sprintf(" (known: %s)", strings.Join(known, ", "))
			}
			p.problem(k, field, "%s", msg)
			continue
		}
		out[k.Value] = v
	}
	return out
}

func join(at, k string) string {
	if at == "" {
		return k
	}
	return at + "." + k
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "empty"
		}
		return fmt.Sprintf("the value %q", n.Value)
	}
	return "an alias"
}

func (p *parser) str(n *yaml.Node, field string) (string, bool) {
	if n == nil {
		return "", false
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.problem(n, field, "must be a string, not %s", kindName(n))
		return "", false
	}
	return n.Value, true
}

func (p *parser) boolean(n *yaml.Node, field string) bool {
	if n == nil {
		return false
	}
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		p.problem(n, field, "must be true or false, not %s", kindName(n))
	}
	return b
}

func (p *parser) path(rel string) string {
	if rel == "" || filepath.IsAbs(rel) {
		return rel
	}
	return filepath.Join(p.dir, rel)
}

// inside refuses a path a function is packaged from (zip or dir) that lies outside the
// manifest's directory, symbolic links followed: a slip such as dir: ../../.. would package
// whatever is there, home directory and credentials included, and ship it to Lambda. A manifest
// sits at the top of what it ships (in a monorepo, at the top of the part it ships).
func (p *parser) inside(n *yaml.Node, field, written, full string) {
	base := p.dir
	if b, err := filepath.EvalSymlinks(base); err == nil {
		base = b
	}
	if f, err := filepath.EvalSymlinks(full); err == nil {
		full = f
	}
	rel, err := filepath.Rel(base, full)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		p.problem(n, field, "%s is outside the manifest's directory %s: a function is made only from files under it (move aviary.yaml up to the top of what it ships)", written, p.dir)
	}
}

func (p *parser) manifest(root *yaml.Node) *Manifest {
	f := p.fields(root, "", "service", "alias", "store", "dashboard", "artifacts", "functions", "environments")
	m := &Manifest{Alias: "live", Environments: map[string]*Environment{}}
	if s, ok := p.str(f["service"], "service"); ok {
		if !nameRE.MatchString(s) {
			p.problem(f["service"], "service", "%q may hold only letters, digits, - and _", s)
		}
		m.Service = s
	} else if f["service"] == nil {
		p.problem(root, "service", "is required: the name of the service these functions make up")
	}
	if a, ok := p.str(f["alias"], "alias"); ok {
		if !aliasRE.MatchString(a) || regexp.MustCompile(`^[0-9]+$`).MatchString(a) {
			p.problem(f["alias"], "alias", "%q is not a Lambda alias name (letters, digits, - and _, not all digits)", a)
		}
		m.Alias = a
	}
	m.Store = "sqlite://" + filepath.Join(p.dir, ".aviary", "state.db")
	if s, ok := p.str(f["store"], "store"); ok {
		switch {
		case strings.HasPrefix(s, "sqlite://"):
			m.Store = "sqlite://" + p.path(strings.TrimPrefix(s, "sqlite://"))
		case strings.HasPrefix(s, "dynamodb://"):
			m.Store = s
		default:
			p.problem(f["store"], "store", "%q is not a store URL: use sqlite://PATH or dynamodb://TABLE", s)
		}
	}
	if s, ok := p.str(f["dashboard"], "dashboard"); ok {
		if u, err := url.Parse(s); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			p.problem(f["dashboard"], "dashboard", "%q is not an http(s) URL (the public address of aviary serve, for approval links)", s)
		}
		m.Dashboard = strings.TrimRight(s, "/")
	}
	p.artifacts(f["artifacts"], root, m)
	p.functions(f["functions"], root, m)
	p.environments(f["environments"], root, m)
	return m
}

func (p *parser) artifacts(n, root *yaml.Node, m *Manifest) {
	if n == nil {
		p.problem(root, "artifacts", "is required: the S3 bucket (and prefix) where function zips are kept")
		return
	}
	f := p.fields(n, "artifacts", "bucket", "prefix", "cache")
	if b, ok := p.str(f["bucket"], "artifacts.bucket"); ok {
		if !bucketRE.MatchString(b) || strings.Contains(b, "..") {
			p.problem(f["bucket"], "artifacts.bucket", "%q is not an S3 bucket name (3–63 lowercase letters, digits, dots and hyphens)", b)
		}
		m.Artifacts.Bucket = b
	} else if f["bucket"] == nil {
		p.problem(n, "artifacts.bucket", "is required")
	}
	m.Artifacts.Prefix = "aviary/" + m.Service
	if s, ok := p.str(f["prefix"], "artifacts.prefix"); ok {
		m.Artifacts.Prefix = strings.Trim(s, "/")
	}
	m.Artifacts.Cache = filepath.Join(p.dir, ".aviary", "cache")
	if s, ok := p.str(f["cache"], "artifacts.cache"); ok {
		m.Artifacts.Cache = p.path(s)
	}
}

func (p *parser) functions(n, root *yaml.Node, m *Manifest) {
	if n == nil {
		p.problem(root, "functions", "is required: the functions of the service and how each zip is made")
		return
	}
	if n.Kind != yaml.MappingNode {
		p.problem(n, "functions", "must be a mapping of function names to how each is built, not %s", kindName(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := "functions." + k.Value
		if seen[k.Value] {
			p.problem(k, field, "appears twice")
			continue
		}
		seen[k.Value] = true
		if !nameRE.MatchString(k.Value) {
			p.problem(k, field, "function names may hold only letters, digits, - and _")
		}
		fn := Function{Name: k.Value, Line: k.Line}
		f := p.fields(v, field, "zip", "dir", "build", "image", "configuration")
		sources := 0
		if c := f["configuration"]; c != nil {
			fn.Configuration = p.configuration(c, field+".configuration")
		}
		if s, ok := p.str(f["zip"], field+".zip"); ok {
			sources++
			fn.Zip = p.path(s)
			if st, err := os.Stat(fn.Zip); err != nil || st.IsDir() {
				p.problem(f["zip"], field+".zip", "%s is not a file", s)
			} else {
				p.inside(f["zip"], field+".zip", s, fn.Zip)
			}
		}
		if s, ok := p.str(f["dir"], field+".dir"); ok {
			sources++
			fn.Dir = p.path(s)
			if st, err := os.Stat(fn.Dir); err != nil || !st.IsDir() {
				p.problem(f["dir"], field+".dir", "%s is not a directory", s)
			} else {
				p.inside(f["dir"], field+".dir", s, fn.Dir)
			}
		}
		if b := f["build"]; b != nil {
			sources++
			fn.Build = p.build(b, field+".build")
		}
		if p.image(f["image"], field+".image", &fn) {
			sources++
			if fn.Configuration != nil {
				// Publishing an image updates its code alone: a configuration beside it would be
				// planned and then silently not shipped.
				p.problem(f["configuration"], field+".configuration", "is not supported yet on an image function: manage its configuration with Terraform or CloudFormation, or package it as a zip")
			}
		}
		if sources != 1 && v.Kind == yaml.MappingNode {
			p.problem(v, field, "needs exactly one of zip (a built zip), dir (a directory to package), build (a command writing into $AVIARY_OUT) or image (a container image in ECR); it has %d", sources)
		}
		m.Functions = append(m.Functions, fn)
	}
	if len(m.Functions) == 0 {
		p.problem(n, "functions", "lists no functions")
	}
	sort.Slice(m.Functions, func(i, j int) bool { return m.Functions[i].Name < m.Functions[j].Name })
}

func (p *parser) build(n *yaml.Node, field string) *Build {
	b := &Build{Dir: p.dir}
	if n.Kind == yaml.ScalarNode {
		b.Command, _ = p.str(n, field)
	} else {
		f := p.fields(n, field, "command", "dir")
		if s, ok := p.str(f["command"], field+".command"); ok {
			b.Command = s
		} else if f["command"] == nil {
			p.problem(n, field+".command", "is required")
		}
		if s, ok := p.str(f["dir"], field+".dir"); ok {
			// A build may run anywhere (a monorepo builds from its root): what it ships is
			// what it writes into $AVIARY_OUT, not the directory it runs in.
			b.Dir = p.path(s)
		}
	}
	if strings.TrimSpace(b.Command) == "" && n.Kind == yaml.ScalarNode {
		p.problem(n, field, "is an empty command")
	}
	return b
}

func (p *parser) environments(n, root *yaml.Node, m *Manifest) {
	if n == nil {
		p.problem(root, "environments", "is required: where releases go (for example staging and production)")
		return
	}
	if n.Kind != yaml.MappingNode {
		p.problem(n, "environments", "must be a mapping of environment names to their settings, not %s", kindName(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := "environments." + k.Value
		if _, dup := m.Environments[k.Value]; dup {
			p.problem(k, field, "appears twice")
			continue
		}
		if !nameRE.MatchString(k.Value) {
			p.problem(k, field, "environment names may hold only letters, digits, - and _")
		}
		env := &Environment{Name: k.Value, FunctionName: DefaultFunctionName, Line: k.Line}
		f := p.fields(v, field, "function_name", "region", "strategy", "pre_approve", "checks", "approval", "notify", "retain", "controller", "on_cancel")
		if s, ok := p.str(f["function_name"], field+".function_name"); ok {
			env.FunctionName = s
			for _, ph := range placeholderRE.FindAllString(s, -1) {
				if ph != "{service}" && ph != "{function}" && ph != "{env}" {
					p.problem(f["function_name"], field+".function_name", "unknown placeholder %s (use {service}, {function} and {env})", ph)
				}
			}
			if !strings.Contains(s, "{function}") && len(m.Functions) > 1 {
				p.problem(f["function_name"], field+".function_name", "%q lacks {function}: every function would get the same name", s)
			}
		}
		if s, ok := p.str(f["region"], field+".region"); ok {
			if !regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d$`).MatchString(s) {
				p.problem(f["region"], field+".region", "%q is not an AWS region", s)
			}
			env.Region = s
		}
		env.PreApprove = p.boolean(f["pre_approve"], field+".pre_approve")
		if s := f["strategy"]; s != nil {
			env.Strategy = p.strategy(s, field+".strategy")
		} else {
			p.problem(v, field+".strategy", "is required: all-at-once, canary steps, linear, or a preset such as Canary10Percent5Minutes")
		}
		if c := f["checks"]; c != nil {
			env.Checks = p.checks(c, field+".checks", m, env)
		}
		if a := f["approval"]; a != nil {
			env.Approval = p.approval(a, field+".approval", env)
		}
		if n := f["notify"]; n != nil {
			env.Notify = p.notify(n, field+".notify")
		}
		env.Retain = p.retain(f["retain"], field+".retain")
		if c := f["controller"]; c != nil {
			env.Controller = p.controller(c, field+".controller")
		}
		env.OnCancel = OnCancelRollback
		if s, ok := p.str(f["on_cancel"], field+".on_cancel"); ok {
			if s != OnCancelRollback && s != OnCancelLeave {
				p.problem(f["on_cancel"], field+".on_cancel", "%q is neither rollback (the default: an interrupted deploy rolls the fleet back) nor leave (it stays where it is for `aviary resume` or `aviary rollback`)", s)
			} else {
				env.OnCancel = s
			}
		}
		if len(m.Functions) > 0 && m.Service != "" {
			for _, fn := range m.Functions {
				if name := m.FunctionName(env, fn.Name); !lambdaNameRE.MatchString(name) {
					p.problem(f["function_name"], field+".function_name", "gives function %s the name %q, which Lambda does not accept (1–64 letters, digits, - and _)", fn.Name, name)
				}
			}
		}
		m.Environments[k.Value] = env
	}
	if len(m.Environments) == 0 {
		p.problem(n, "environments", "lists no environments")
	}
}

// controller reads `controller:`: true, or a block naming the function.
func (p *parser) controller(n *yaml.Node, field string) *Controller {
	c := &Controller{Function: DefaultControllerFunction}
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "true":
			return c
		case "false":
			return nil
		}
		p.problem(n, field, "%q is neither true nor a block such as {function: aviary-controller}", n.Value)
		return nil
	}
	f := p.fields(n, field, "function")
	if s, ok := p.str(f["function"], field+".function"); ok {
		if !lambdaNameRE.MatchString(s) {
			p.problem(f["function"], field+".function", "%q is not a Lambda function name (1–64 letters, digits, - and _)", s)
		}
		c.Function = s
	}
	return c
}

func (p *parser) retain(n *yaml.Node, field string) Retain {
	r := Retain{Releases: DefaultRetainReleases}
	if n == nil {
		return r
	}
	f := p.fields(n, field, "releases")
	if v := f["releases"]; v != nil {
		k, err := strconv.Atoi(v.Value)
		switch {
		case v.Kind != yaml.ScalarNode || err != nil:
			p.problem(v, field+".releases", "%q is not a whole number (how many promoted releases keep what a rollback needs; default %d)", v.Value, DefaultRetainReleases)
		case k < 1:
			p.problem(v, field+".releases", "must be at least 1: the release before the current one is what `aviary rollback` restores")
		case k > 100:
			p.problem(v, field+".releases", "%d is more than 100; retention keeps every version these releases name, so keep it small", k)
		default:
			r.Releases = k
		}
	}
	return r
}

func (p *parser) strategy(n *yaml.Node, field string) Strategy {
	if n.Kind == yaml.ScalarNode {
		name := n.Value
		switch {
		case name == "all-at-once" || presetAll.MatchString(name):
			return Strategy{Name: name}
		case presetCanary.MatchString(name):
			g := presetCanary.FindStringSubmatch(name)
			w, _ := strconv.Atoi(g[1])
			mins, _ := strconv.Atoi(g[2])
			if w <= 0 || w >= 100 {
				p.problem(n, field, "%s: the canary weight must be between 1 and 99 percent (100%% is the promotion that follows the bake; for no canary use AllAtOnce)", name)
			}
			return Strategy{Name: name, Steps: []Step{{Weight: float64(w) / 100, Bake: time.Duration(mins) * time.Minute}}}
		case presetLinear.MatchString(name):
			g := presetLinear.FindStringSubmatch(name)
			w, _ := strconv.Atoi(g[1])
			mins, _ := strconv.Atoi(g[2])
			if w <= 0 || w >= 100 {
				p.problem(n, field, "%s: the linear step must be between 1 and 99 percent", name)
				return Strategy{Name: name}
			}
			return Strategy{Name: name, Steps: linearSteps(float64(w)/100, time.Duration(mins)*time.Minute)}
		}
		p.problem(n, field, "unknown strategy %q: use all-at-once, a canary or linear mapping, or a preset such as Canary10Percent5Minutes, Linear10PercentEvery1Minute, AllAtOnce", name)
		return Strategy{}
	}
	f := p.fields(n, field, "canary", "linear")
	switch {
	case len(f) != 1:
		if n.Kind == yaml.MappingNode && (len(f) == 2 || len(n.Content) == 0) {
			p.problem(n, field, "needs exactly one of canary (a list of steps) or linear (step and interval)")
		}
		return Strategy{}
	case f["canary"] != nil:
		c := f["canary"]
		if c.Kind != yaml.SequenceNode || len(c.Content) == 0 {
			p.problem(c, field+".canary", "must be a list of steps, each with weight and bake")
			return Strategy{Name: "canary"}
		}
		s := Strategy{Name: "canary"}
		for i, item := range c.Content {
			at := fmt.Sprintf("%s.canary[%d]", field, i)
			sf := p.fields(item, at, "weight", "bake")
			st := Step{}
			if w := sf["weight"]; w != nil {
				st.Weight = p.weight(w, at+".weight")
				switch prev := s.Steps; {
				case st.Weight >= 1:
					p.problem(w, at+".weight", "100%% is not a canary step: promotion moves all traffic after the last step's bake (end the steps below 100%%)")
				case len(prev) > 0 && st.Weight > 0 && st.Weight <= prev[len(prev)-1].Weight:
					p.problem(w, at+".weight", "%s after %s: each step must put more traffic on the new version than the one before (a rollback, not a step, takes traffic away)",
						Percent(st.Weight), Percent(prev[len(prev)-1].Weight))
				}
			} else {
				p.problem(item, at+".weight", "is required: the share of traffic on the new version, such as 10%%")
			}
			if b := sf["bake"]; b != nil {
				st.Bake = p.duration(b, at+".bake")
			}
			s.Steps = append(s.Steps, st)
		}
		return s
	default:
		l := f["linear"]
		lf := p.fields(l, field+".linear", "step", "interval")
		var step float64
		if w := lf["step"]; w != nil {
			step = p.weight(w, field+".linear.step")
			if step >= 1 {
				p.problem(w, field+".linear.step", "must be below 100%%")
				step = 0
			}
		} else {
			p.problem(l, field+".linear.step", "is required, such as 10%%")
		}
		var interval time.Duration
		if iv := lf["interval"]; iv != nil {
			interval = p.duration(iv, field+".linear.interval")
		} else {
			p.problem(l, field+".linear.interval", "is required, such as 1m")
		}
		if step <= 0 {
			return Strategy{Name: "linear"}
		}
		return Strategy{Name: "linear", Steps: linearSteps(step, interval)}
	}
}

// ParseWeight reads a weight written as a percentage: 10, 10% or 12.5%.
func ParseWeight(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "%")), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a percentage (write 10 or 10%%)", s)
	}
	if v <= 0 || v > 100 {
		return 0, fmt.Errorf("%s is outside 0–100%%: a weight is the share of traffic on the new version", s)
	}
	return v / 100, nil
}

func (p *parser) weight(n *yaml.Node, field string) float64 {
	if n.Kind != yaml.ScalarNode {
		p.problem(n, field, "must be a percentage such as 10%%, not %s", kindName(n))
		return 0
	}
	w, err := ParseWeight(n.Value)
	if err != nil {
		p.problem(n, field, "%v", err)
	}
	return w
}

func (p *parser) duration(n *yaml.Node, field string) time.Duration {
	if n.Kind != yaml.ScalarNode {
		p.problem(n, field, "must be a duration such as 5m or 30s, not %s", kindName(n))
		return 0
	}
	if n.Value == "0" {
		return 0
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil || d < 0 {
		p.problem(n, field, "%q is not a duration (write 30s, 5m or 1h30m)", n.Value)
		return 0
	}
	return d
}

// suggest finds the known word closest to s, if any is close.
func suggest(s string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := distance(strings.ToLower(s), k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
