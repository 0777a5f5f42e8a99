package manifest

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/aviary-deploy/aviary/configvalue"
)

// Configuration is a function's `configuration:` block: the settings Aviary manages, as Lambda's
// UpdateFunctionConfiguration (and, for architectures, UpdateFunctionCode) names them. Only what
// the block names is managed; everything else stays with the infrastructure tool.
//
// Environment is managed as a whole: when the block names `environment:`, the function's
// variables become exactly those listed (a variable set outside Aviary is removed by the next
// release), because Lambda replaces the whole map on every update and a version snapshots the
// whole map: a release that merged keys would ship whatever else happened to be there.
type Configuration struct {
	// Environment maps variable names to value templates: literal text with ${VAR} and
	// {{ssm:/path}} references; nil: not managed.
	Environment map[string]string
	// MemorySize (MB) and Timeout (seconds); 0: not managed.
	MemorySize int
	Timeout    int
	// Layers are layer version ARNs, in order; nil: not managed (an empty list removes every layer).
	Layers []string
	// Architectures is [x86_64] or [arm64]; nil: not managed.
	Architectures []string
	Line          int
}

// Lambda's limits on what UpdateFunctionConfiguration accepts.
const (
	MinMemory          = 128
	MaxMemory          = 10240
	MaxTimeout         = 900
	MaxLayers          = 5
	MaxEnvironmentSize = 4096 // bytes of keys and values together
)

var (
	envKeyRE   = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]+$`)
	layerARNRE = regexp.MustCompile(`^arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+$`)
)

// ReservedEnvironment are the variables Lambda sets itself and refuses in a function's
// configuration (docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html).
var ReservedEnvironment = []string{
	"_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
	"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
	"AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
	"AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
}

func (p *parser) configuration(n *yaml.Node, field string) *Configuration {
	c := &Configuration{Line: n.Line}
	f := p.fields(n, field, "environment", "memory", "timeout", "layers", "architectures")
	if e := f["environment"]; e != nil {
		c.Environment = p.environment(e, field+".environment")
	}
	if v := f["memory"]; v != nil {
		c.MemorySize = p.bounded(v, field+".memory", MinMemory, MaxMemory, "MB of memory")
	}
	if v := f["timeout"]; v != nil {
		c.Timeout = p.bounded(v, field+".timeout", 1, MaxTimeout, "seconds")
	}
	if v := f["layers"]; v != nil {
		c.Layers = []string{}
		if v.Kind != yaml.SequenceNode {
			p.problem(v, field+".layers", "must be a list of layer version ARNs, not %s", kindName(v))
		} else {
			if len(v.Content) > MaxLayers {
				p.problem(v, field+".layers", "lists %d layers; Lambda takes at most %d", len(v.Content), MaxLayers)
			}
			for i, l := range v.Content {
				at := fmt.Sprintf("%s.layers[%d]", field, i)
				if s, ok := p.str(l, at); ok {
					if !layerARNRE.MatchString(s) || len(s) > 140 {
						p.problem(l, at, "%q is not a layer version ARN (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION)", s)
					}
					c.Layers = append(c.Layers, s)
				}
			}
		}
	}
	if v := f["architectures"]; v != nil {
		if v.Kind != yaml.SequenceNode || len(v.Content) != 1 {
			p.problem(v, field+".architectures", "must be a list of one architecture: [arm64] or [x86_64]")
		} else if s, ok := p.str(v.Content[0], field+".architectures[0]"); ok {
			if s != "arm64" && s != "x86_64" {
				p.problem(v.Content[0], field+".architectures[0]", "%q is not an architecture Lambda runs (arm64 or x86_64)", s)
			}
			c.Architectures = []string{s}
		}
	}
	return c
}

func (p *parser) environment(n *yaml.Node, field string) map[string]string {
	env := map[string]string{}
	if n.Kind != yaml.MappingNode {
		p.problem(n, field, "must be a mapping of variable names to values, not %s", kindName(n))
		return env
	}
	size := 0
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		at := field + "." + k.Value
		if _, dup := env[k.Value]; dup {
			p.problem(k, at, "appears twice")
			continue
		}
		switch {
		case !envKeyRE.MatchString(k.Value):
			p.problem(k, at, "%q is not a name Lambda accepts for an environment variable (a letter, then letters, digits and _; at least two characters)", k.Value)
		case contains(ReservedEnvironment, k.Value):
			p.problem(k, at, "%s is reserved: Lambda sets it itself and refuses it in a function's configuration", k.Value)
		}
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			p.problem(v, at, "must be a string (quote numbers and booleans), not %s", kindName(v))
			continue
		}
		if _, err := configvalue.Refs(v.Value); err != nil {
			p.problem(v, at, "%v", err)
		}
		env[k.Value] = v.Value
		size += len(k.Value) + len(v.Value)
	}
	if size > MaxEnvironmentSize {
		// References may resolve longer or shorter: plan checks the resolved size again.
		p.problem(n, field, "is %d bytes (names and values); Lambda takes at most 4 KB", size)
	}
	return env
}

func (p *parser) bounded(n *yaml.Node, field string, lo, hi int, unit string) int {
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		p.problem(n, field, "%q is not a whole number of %s", n.Value, unit)
		return 0
	}
	if v < lo || v > hi {
		p.problem(n, field, "%d is outside what Lambda accepts (%d–%d %s)", v, lo, hi, unit)
		return 0
	}
	return v
}

// Keys lists a configuration's environment variable names, sorted.
func (c *Configuration) Keys() []string {
	keys := make([]string, 0, len(c.Environment))
	for k := range c.Environment {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Fields names what a configuration manages, as the manifest writes them.
func (c *Configuration) Fields() []string {
	var out []string
	if c.Environment != nil {
		out = append(out, "environment")
	}
	if c.MemorySize != 0 {
		out = append(out, "memory")
	}
	if c.Timeout != 0 {
		out = append(out, "timeout")
	}
	if c.Layers != nil {
		out = append(out, "layers")
	}
	if c.Architectures != nil {
		out = append(out, "architectures")
	}
	return out
}
