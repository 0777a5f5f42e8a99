package cloudformation

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/awslabs/goformation/v7/intrinsics"
)

// Resource types the sandbox provisions.
const (
	typeFunction   = "AWS::Lambda::Function"
	typeVersion    = "AWS::Lambda::Version"
	typeAlias      = "AWS::Lambda::Alias"
	typePermission = "AWS::Lambda::Permission"
	typeStack      = "AWS::CloudFormation::Stack"
	typeTable      = "AWS::DynamoDB::Table"
	typeBucket     = "AWS::S3::Bucket"
	typeRole       = "AWS::IAM::Role"
	typeOIDC       = "AWS::IAM::OIDCProvider"
	typeURL        = "AWS::Lambda::Url"
	typeSchedule   = "AWS::Scheduler::Schedule"
	typeGroup      = "AWS::Scheduler::ScheduleGroup"
)

var supportedTypes = []string{typeFunction, typeVersion, typeAlias, typePermission, typeStack, typeTable, typeBucket, typeRole, typeOIDC, typeURL, typeSchedule, typeGroup}

// template is a parsed template, its intrinsic functions in long form and unevaluated: the
// sandbox evaluates them itself, resource by resource, once the resources they name exist (so
// that Ref and Fn::GetAtt give real physical ids, which goformation's own resolver cannot know).
type template struct {
	Description string
	Parameters  map[string]paramDef
	Resources   map[string]resourceDef
	Outputs     map[string]outputDef
	Mappings    map[string]any
	// Conditions are the template's conditions, unevaluated: resolve evaluates them.
	Conditions map[string]any
	// order is the resources in an order that creates every resource after those it depends on.
	order []string
	// deps are the resources each resource depends on.
	deps map[string][]string
}

type paramDef struct {
	Type          string
	Default       *string
	AllowedValues []string
	NoEcho        bool
}

type resourceDef struct {
	Type                string
	Properties          map[string]any
	DependsOn           []string
	DeletionPolicy      string
	UpdateReplacePolicy string
	// Condition names the condition that decides whether the resource exists.
	Condition string
}

type outputDef struct {
	Value       any
	Description string
	Condition   string
}

// templateError is a ValidationError about a template, worded as CloudFormation words them.
type templateError struct{ msg string }

func (e *templateError) Error() string { return e.msg }

func tmplErr(format string, args ...any) error {
	return &templateError{msg: fmt.Sprintf(format, args...)}
}

// goformation serialises goformation's template processing: ProcessYAML registers its YAML tag
// resolvers in a package-level map on every call, which concurrent calls would race on.
var goformation sync.Mutex

// parseTemplate reads a JSON or YAML template (YAML short forms such as !Ref, !GetAtt and !Sub
// become their long forms through goformation) and checks what the sandbox can deploy.
func parseTemplate(body string) (*template, error) {
	trimmed := bytes.TrimSpace([]byte(body))
	if len(trimmed) == 0 {
		return nil, tmplErr("Template format error: template body is empty")
	}
	opts := &intrinsics.ProcessorOptions{NoProcess: true}
	var (
		long []byte
		err  error
	)
	goformation.Lock()
	if trimmed[0] == '{' {
		long, err = intrinsics.ProcessJSON(trimmed, opts)
	} else {
		long, err = intrinsics.ProcessYAML(trimmed, opts)
	}
	goformation.Unlock()
	if err != nil {
		return nil, tmplErr("Template format error: %v", err)
	}
	var raw map[string]any
	if err := json.Unmarshal(long, &raw); err != nil {
		return nil, tmplErr("Template format error: JSON not well-formed: %v", err)
	}
	t := &template{Parameters: map[string]paramDef{}, Resources: map[string]resourceDef{}, Outputs: map[string]outputDef{}}
	for k := range raw {
		switch k {
		case "AWSTemplateFormatVersion", "Description", "Metadata", "Parameters", "Resources", "Outputs", "Mappings", "Conditions":
		case "Transform", "Rules":
			return nil, tmplErr("Template format error: the Aviary sandbox does not support the %s section", k)
		default:
			return nil, tmplErr("Template format error: Invalid template property or properties [%s]", k)
		}
	}
	t.Description, _ = raw["Description"].(string)
	t.Mappings, _ = raw["Mappings"].(map[string]any)
	t.Conditions, _ = raw["Conditions"].(map[string]any)
	if ps, ok := raw["Parameters"].(map[string]any); ok {
		for name, v := range ps {
			m, _ := v.(map[string]any)
			p := paramDef{Type: str(m["Type"])}
			switch p.Type {
			case "String", "Number", "CommaDelimitedList":
			case "":
				return nil, tmplErr("Template format error: Every Parameters object must contain a Type member.")
			default:
				return nil, tmplErr("Template format error: Unrecognized parameter type: %s", p.Type)
			}
			if d, ok := m["Default"]; ok {
				s := scalarString(d)
				p.Default = &s
			}
			if av, ok := m["AllowedValues"].([]any); ok {
				for _, a := range av {
					p.AllowedValues = append(p.AllowedValues, scalarString(a))
				}
			}
			p.NoEcho = str(m["NoEcho"]) == "true" || m["NoEcho"] == true
			t.Parameters[name] = p
		}
	}
	rs, ok := raw["Resources"].(map[string]any)
	if !ok || len(rs) == 0 {
		return nil, tmplErr("Template format error: At least one Resources member must be defined.")
	}
	var unsupported []string
	for name, v := range rs {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, tmplErr("Template format error: [/Resources/%s] resource definition is malformed", name)
		}
		r := resourceDef{Type: str(m["Type"]), DeletionPolicy: str(m["DeletionPolicy"]), UpdateReplacePolicy: str(m["UpdateReplacePolicy"])}
		if r.Type == "" {
			return nil, tmplErr("Template format error: [/Resources/%s] Every Resources object must contain a Type member.", name)
		}
		if !slices.Contains(supportedTypes, r.Type) {
			unsupported = append(unsupported, r.Type)
		}
		if c, ok := m["Condition"]; ok {
			r.Condition = str(c)
			if _, ok := t.Conditions[r.Condition]; !ok {
				return nil, tmplErr("Template format error: Unresolved condition dependency %s in [/Resources/%s]", r.Condition, name)
			}
		}
		r.Properties, _ = m["Properties"].(map[string]any)
		switch d := m["DependsOn"].(type) {
		case string:
			r.DependsOn = []string{d}
		case []any:
			for _, x := range d {
				r.DependsOn = append(r.DependsOn, str(x))
			}
		}
		t.Resources[name] = r
	}
	if len(unsupported) > 0 {
		slices.Sort(unsupported)
		return nil, tmplErr("Template format error: Unrecognized resource types: [%s] (the Aviary sandbox provisions %s)",
			strings.Join(slices.Compact(unsupported), ", "), strings.Join(supportedTypes, ", "))
	}
	if os, ok := raw["Outputs"].(map[string]any); ok {
		for name, v := range os {
			m, _ := v.(map[string]any)
			t.Outputs[name] = outputDef{Value: m["Value"], Description: str(m["Description"]), Condition: str(m["Condition"])}
		}
	}
	if err := t.sortResources(); err != nil {
		return nil, err
	}
	return t, nil
}

// sortResources orders the resources by their dependencies (Ref, Fn::GetAtt, Fn::Sub and
// DependsOn), checking that each names something the template declares.
func (t *template) sortResources() error {
	deps := map[string][]string{}
	var unresolved []string
	for _, name := range slices.Sorted(maps.Keys(t.Resources)) {
		r := t.Resources[name]
		set := map[string]bool{}
		for _, d := range r.DependsOn {
			if _, ok := t.Resources[d]; !ok {
				return tmplErr("Template format error: Unresolved resource dependencies [%s] in the Resources block of the template", d)
			}
			set[d] = true
		}
		refs, atts := references(r.Properties)
		for _, ref := range refs {
			if _, ok := t.Resources[ref]; ok {
				set[ref] = true
			} else if _, ok := t.Parameters[ref]; !ok && !strings.HasPrefix(ref, "AWS::") {
				unresolved = append(unresolved, ref)
			}
		}
		for _, a := range atts {
			if _, ok := t.Resources[a]; !ok {
				return tmplErr("Template error: instance of Fn::GetAtt references undefined resource %s", a)
			}
			set[a] = true
		}
		delete(set, name)
		deps[name] = slices.Sorted(maps.Keys(set))
	}
	t.deps = deps
	if len(unresolved) > 0 {
		slices.Sort(unresolved)
		return tmplErr("Template format error: Unresolved resource dependencies [%s] in the Resources block of the template", strings.Join(slices.Compact(unresolved), ", "))
	}
	done, visiting := map[string]bool{}, map[string]bool{}
	var visit func(string) error
	visit = func(n string) error {
		if done[n] {
			return nil
		}
		if visiting[n] {
			return tmplErr("Circular dependency between resources: [%s]", strings.Join(slices.Sorted(maps.Keys(visiting)), ", "))
		}
		visiting[n] = true
		for _, d := range deps[n] {
			if err := visit(d); err != nil {
				return err
			}
		}
		delete(visiting, n)
		done[n] = true
		t.order = append(t.order, n)
		return nil
	}
	for _, n := range slices.Sorted(maps.Keys(t.Resources)) {
		if err := visit(n); err != nil {
			return err
		}
	}
	return nil
}

// references lists the names a value refers to: through Ref and Fn::Sub variables (refs), and
// through Fn::GetAtt (atts: the resource part).
func references(v any) (refs, atts []string) {
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if len(x) == 1 {
				if r, ok := x["Ref"].(string); ok {
					refs = append(refs, r)
					return
				}
				if g, ok := x["Fn::GetAtt"]; ok {
					if res, _, ok := getAttParts(g); ok {
						atts = append(atts, res)
					}
					return
				}
				if s, ok := x["Fn::Sub"]; ok {
					var text string
					var vars map[string]any
					switch y := s.(type) {
					case string:
						text = y
					case []any:
						if len(y) > 0 {
							text, _ = y[0].(string)
						}
						if len(y) > 1 {
							vars, _ = y[1].(map[string]any)
							walk(y[1])
						}
					}
					for _, name := range subVariables(text) {
						if _, ok := vars[name]; ok {
							continue
						}
						if res, _, ok := strings.Cut(name, "."); ok {
							atts = append(atts, res)
						} else {
							refs = append(refs, name)
						}
					}
					return
				}
			}
			for _, k := range slices.Sorted(maps.Keys(x)) {
				walk(x[k])
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return refs, atts
}

func getAttParts(v any) (resource, attr string, ok bool) {
	switch g := v.(type) {
	case string:
		return strings.Cut(g, ".")
	case []any:
		if len(g) == 2 {
			r, ok1 := g[0].(string)
			a, ok2 := g[1].(string)
			return r, a, ok1 && ok2
		}
	}
	return "", "", false
}

// subVariables lists the ${Name} variables of a Fn::Sub string (${!Literal} is not one).
func subVariables(s string) []string {
	var names []string
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			return names
		}
		j := strings.Index(s[i:], "}")
		if j < 0 {
			return names
		}
		name := s[i+2 : i+j]
		if !strings.HasPrefix(name, "!") {
			names = append(names, strings.TrimSpace(name))
		}
		s = s[i+j+1:]
	}
}

// noValue is what AWS::NoValue evaluates to: the member is dropped.
type noValueT struct{}

var noValue = noValueT{}

// scope is what intrinsic functions evaluate against: parameters, pseudo parameters, and the
// physical ids and attributes of the resources provisioned so far.
type scope struct {
	params   map[string]string
	listType map[string]bool
	pseudo   map[string]string
	mappings map[string]any
	refs     map[string]string
	attrs    map[string]map[string]string
}

func (sc *scope) ref(name string) (any, error) {
	if name == "AWS::NoValue" {
		return noValue, nil
	}
	if v, ok := sc.pseudo[name]; ok {
		return v, nil
	}
	if v, ok := sc.params[name]; ok {
		if sc.listType[name] {
			var out []any
			for _, p := range strings.Split(v, ",") {
				out = append(out, strings.TrimSpace(p))
			}
			return out, nil
		}
		return v, nil
	}
	if v, ok := sc.refs[name]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("Ref %s: no such parameter, or the resource is not provisioned", name)
}

func (sc *scope) getAtt(res, attr string) (string, error) {
	a, ok := sc.attrs[res]
	if !ok {
		return "", fmt.Errorf("Fn::GetAtt %s.%s: the resource is not provisioned", res, attr)
	}
	v, ok := a[attr]
	if !ok {
		return "", fmt.Errorf("Template error: resource %s does not support attribute type %s in Fn::GetAtt", res, attr)
	}
	return v, nil
}

// eval evaluates every intrinsic function in v.
func (sc *scope) eval(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") {
					return sc.intrinsic(k, arg)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			ev, err := sc.eval(e)
			if err != nil {
				return nil, err
			}
			if ev != noValue {
				out[k] = ev
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			ev, err := sc.eval(e)
			if err != nil {
				return nil, err
			}
			if ev != noValue {
				out = append(out, ev)
			}
		}
		return out, nil
	}
	return v, nil
}

func (sc *scope) evalString(v any, fn string) (string, error) {
	ev, err := sc.eval(v)
	if err != nil {
		return "", err
	}
	switch s := ev.(type) {
	case string:
		return s, nil
	case float64, bool, json.Number:
		return scalarString(s), nil
	}
	return "", fmt.Errorf("Template error: every %s object requires a string value", fn)
}

func (sc *scope) intrinsic(fn string, arg any) (any, error) {
	switch fn {
	case "Ref":
		name, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("Template error: every Ref object must have a single String value")
		}
		return sc.ref(name)
	case "Fn::GetAtt":
		res, attr, ok := getAttParts(arg)
		if !ok {
			return nil, fmt.Errorf("Template error: every Fn::GetAtt object requires two non-empty parameters")
		}
		return sc.getAtt(res, attr)
	case "Fn::Sub":
		var text string
		vars := map[string]any{}
		switch y := arg.(type) {
		case string:
			text = y
		case []any:
			if len(y) != 2 {
				return nil, fmt.Errorf("Template error: One or more Fn::Sub intrinsic functions don't specify expected arguments")
			}
			text, _ = y[0].(string)
			m, _ := y[1].(map[string]any)
			for k, e := range m {
				ev, err := sc.evalString(e, "Fn::Sub")
				if err != nil {
					return nil, err
				}
				vars[k] = ev
			}
		default:
			return nil, fmt.Errorf("Template error: One or more Fn::Sub intrinsic functions don't specify expected arguments")
		}
		return sc.sub(text, vars)
	case "Fn::Join":
		a, ok := arg.([]any)
		if !ok || len(a) != 2 {
			return nil, fmt.Errorf("Template error: every Fn::Join object requires two parameters")
		}
		delim, _ := a[0].(string)
		list, err := sc.eval(a[1])
		if err != nil {
			return nil, err
		}
		items, ok := list.([]any)
		if !ok {
			return nil, fmt.Errorf("Template error: every Fn::Join object requires a list of values")
		}
		parts := make([]string, len(items))
		for i, it := range items {
			parts[i] = scalarString(it)
		}
		return strings.Join(parts, delim), nil
	case "Fn::Select":
		a, ok := arg.([]any)
		if !ok || len(a) != 2 {
			return nil, fmt.Errorf("Template error: Fn::Select requires a list argument with two elements")
		}
		idx, err := sc.evalString(a[0], "Fn::Select")
		if err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(idx)
		list, lerr := sc.eval(a[1])
		items, ok := list.([]any)
		if err != nil || lerr != nil || !ok || n < 0 || n >= len(items) {
			return nil, fmt.Errorf("Template error: Fn::Select cannot select nonexistent value at index %s", idx)
		}
		return items[n], nil
	case "Fn::Split":
		a, ok := arg.([]any)
		if !ok || len(a) != 2 {
			return nil, fmt.Errorf("Template error: every Fn::Split object requires two parameters")
		}
		delim, _ := a[0].(string)
		s, err := sc.evalString(a[1], "Fn::Split")
		if err != nil {
			return nil, err
		}
		var out []any
		for _, p := range strings.Split(s, delim) {
			out = append(out, p)
		}
		return out, nil
	case "Fn::Base64":
		s, err := sc.evalString(arg, "Fn::Base64")
		if err != nil {
			return nil, err
		}
		return base64.StdEncoding.EncodeToString([]byte(s)), nil
	case "Fn::FindInMap":
		a, ok := arg.([]any)
		if !ok || len(a) != 3 {
			return nil, fmt.Errorf("Template error: every Fn::FindInMap object requires three parameters")
		}
		var keys [3]string
		for i := range a {
			s, err := sc.evalString(a[i], "Fn::FindInMap")
			if err != nil {
				return nil, err
			}
			keys[i] = s
		}
		m1, _ := sc.mappings[keys[0]].(map[string]any)
		m2, _ := m1[keys[1]].(map[string]any)
		v, ok := m2[keys[2]]
		if !ok {
			return nil, fmt.Errorf("Template error: Unable to get mapping for %s::%s::%s", keys[0], keys[1], keys[2])
		}
		return v, nil
	}
	return nil, fmt.Errorf("Template error: the Aviary sandbox does not evaluate %s", fn)
}

func (sc *scope) sub(text string, vars map[string]any) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(text, "${")
		if i < 0 {
			b.WriteString(text)
			return b.String(), nil
		}
		j := strings.Index(text[i:], "}")
		if j < 0 {
			b.WriteString(text)
			return b.String(), nil
		}
		b.WriteString(text[:i])
		name := strings.TrimSpace(text[i+2 : i+j])
		text = text[i+j+1:]
		if lit, ok := strings.CutPrefix(name, "!"); ok {
			b.WriteString("${" + lit + "}")
			continue
		}
		if v, ok := vars[name]; ok {
			b.WriteString(scalarString(v))
			continue
		}
		if res, attr, ok := strings.Cut(name, "."); ok {
			v, err := sc.getAtt(res, attr)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			continue
		}
		v, err := sc.ref(name)
		if err != nil {
			return "", err
		}
		b.WriteString(scalarString(v))
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// scalarString is a template scalar as CloudFormation passes it on: numbers and booleans as
// their text.
func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		return x.String()
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = scalarString(e)
		}
		return strings.Join(parts, ",")
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// sortedKeys is a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// resolve evaluates the template's conditions against a scope (parameters and pseudo
// parameters): it returns the template as it applies, without the resources and outputs whose
// condition is false, with every Fn::If replaced by the branch its condition chooses, and its
// resources ordered again (a dependency through the branch not taken is none).
func (t *template) resolve(sc *scope) (*template, error) {
	if len(t.Conditions) == 0 && !hasIf(t) {
		return t, nil
	}
	values := map[string]bool{}
	visiting := map[string]bool{}
	var cond func(name string) (bool, error)
	var eval func(v any) (bool, error)
	cond = func(name string) (bool, error) {
		if v, ok := values[name]; ok {
			return v, nil
		}
		def, ok := t.Conditions[name]
		if !ok {
			return false, tmplErr("Template format error: Unresolved condition dependency %s", name)
		}
		if visiting[name] {
			return false, tmplErr("Template format error: Circular dependency between conditions: %s", name)
		}
		visiting[name] = true
		v, err := eval(def)
		if err != nil {
			return false, err
		}
		values[name] = v
		return v, nil
	}
	eval = func(v any) (bool, error) {
		m, ok := v.(map[string]any)
		if !ok || len(m) != 1 {
			return false, tmplErr("Template format error: a condition must be an intrinsic function (Fn::Equals, Fn::Not, Fn::And, Fn::Or or Condition)")
		}
		for fn, arg := range m {
			args, _ := arg.([]any)
			switch fn {
			case "Condition":
				return cond(str(arg))
			case "Fn::Equals":
				if len(args) != 2 {
					return false, tmplErr("Template error: Fn::Equals requires two arguments")
				}
				a, err := sc.eval(args[0])
				if err != nil {
					return false, err
				}
				b, err := sc.eval(args[1])
				if err != nil {
					return false, err
				}
				return scalarString(a) == scalarString(b), nil
			case "Fn::Not":
				if len(args) != 1 {
					return false, tmplErr("Template error: Fn::Not requires one argument")
				}
				x, err := eval(args[0])
				return !x, err
			case "Fn::And", "Fn::Or":
				if len(args) < 2 || len(args) > 10 {
					return false, tmplErr("Template error: %s requires between 2 and 10 arguments", fn)
				}
				and := fn == "Fn::And"
				for _, a := range args {
					x, err := eval(a)
					if err != nil {
						return false, err
					}
					if x != and {
						return x, nil
					}
				}
				return and, nil
			}
			return false, tmplErr("Template format error: %s is not a condition function", fn)
		}
		return false, nil
	}
	var ifs func(v any) (any, error)
	ifs = func(v any) (any, error) {
		switch x := v.(type) {
		case map[string]any:
			if a, ok := x["Fn::If"]; ok && len(x) == 1 {
				args, _ := a.([]any)
				if len(args) != 3 {
					return nil, tmplErr("Template error: Fn::If requires a condition and two values")
				}
				c, err := cond(str(args[0]))
				if err != nil {
					return nil, err
				}
				if c {
					return ifs(args[1])
				}
				return ifs(args[2])
			}
			out := make(map[string]any, len(x))
			for k, e := range x {
				ev, err := ifs(e)
				if err != nil {
					return nil, err
				}
				out[k] = ev
			}
			return out, nil
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				ev, err := ifs(e)
				if err != nil {
					return nil, err
				}
				out[i] = ev
			}
			return out, nil
		}
		return v, nil
	}
	out := &template{Description: t.Description, Parameters: t.Parameters, Mappings: t.Mappings,
		Resources: map[string]resourceDef{}, Outputs: map[string]outputDef{}}
	for name, r := range t.Resources {
		if r.Condition != "" {
			ok, err := cond(r.Condition)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		props, err := ifs(r.Properties)
		if err != nil {
			return nil, err
		}
		r.Properties, _ = props.(map[string]any)
		out.Resources[name] = r
	}
	for name, o := range t.Outputs {
		if o.Condition != "" {
			ok, err := cond(o.Condition)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		v, err := ifs(o.Value)
		if err != nil {
			return nil, err
		}
		o.Value = v
		out.Outputs[name] = o
	}
	if len(out.Resources) == 0 {
		return nil, tmplErr("Template format error: At least one Resources member must be defined.")
	}
	if err := out.sortResources(); err != nil {
		return nil, err
	}
	return out, nil
}

// hasIf reports whether any resource or output uses Fn::If.
func hasIf(t *template) bool {
	b, _ := json.Marshal([]any{t.Resources, t.Outputs})
	return bytes.Contains(b, []byte(`"Fn::If"`))
}
