package iampolicy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Terraform is how Policy.Terraform writes a policy as an aws_iam_policy_document data source.
type Terraform struct {
	Name string // the data source's name
	// Value turns a resource or a condition value into an HCL expression: a string (list false)
	// or a list of strings (list true). Nil writes every value as a quoted literal.
	Value func(s string) (expr string, list bool)
	// When gives the condition under which a statement is in the policy (an HCL boolean
	// expression), "" for always. Nil: every statement always.
	When func(sid string) string
}

// Terraform writes the policy as a Terraform `data "aws_iam_policy_document"` block: the same
// statements, actions, resources and conditions, in the form a module can attach to a role.
func (p Policy) Terraform(t Terraform) string {
	value := t.Value
	if value == nil {
		value = func(s string) (string, bool) { return HCLQuote(s), false }
	}
	var b strings.Builder
	fmt.Fprintf(&b, "data \"aws_iam_policy_document\" %s {\n", HCLQuote(t.Name))
	for _, s := range p.Statement {
		when := ""
		if t.When != nil {
			when = t.When(s.Sid)
		}
		indent := "  "
		if when != "" {
			fmt.Fprintf(&b, "  dynamic \"statement\" {\n    for_each = %s ? [1] : []\n    content {\n", when)
			indent = "    "
		} else {
			b.WriteString("  statement {\n")
		}
		fmt.Fprintf(&b, "%s  sid       = %s\n", indent, HCLQuote(s.Sid))
		fmt.Fprintf(&b, "%s  effect    = %s\n", indent, HCLQuote(s.Effect))
		fmt.Fprintf(&b, "%s  actions   = %s\n", indent, quotedList(s.Action))
		fmt.Fprintf(&b, "%s  resources = %s\n", indent, listExpr(s.Resource, value))
		for _, test := range sortedKeys(s.Condition) {
			for _, variable := range sortedKeys(s.Condition[test]) {
				fmt.Fprintf(&b, "%s  condition {\n", indent)
				fmt.Fprintf(&b, "%s    test     = %s\n", indent, HCLQuote(test))
				fmt.Fprintf(&b, "%s    variable = %s\n", indent, HCLQuote(variable))
				fmt.Fprintf(&b, "%s    values   = %s\n", indent, listExpr([]string{s.Condition[test][variable]}, value))
				fmt.Fprintf(&b, "%s  }\n", indent)
			}
		}
		if when != "" {
			b.WriteString("    }\n")
		}
		b.WriteString("  }\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// listExpr is an HCL list of the values: one list literal when every value is a string,
// else a concat of lists.
func listExpr(values []string, value func(string) (string, bool)) string {
	var parts []string
	var run []string
	flush := func() {
		if len(run) > 0 {
			parts = append(parts, "["+strings.Join(run, ", ")+"]")
			run = nil
		}
	}
	for _, v := range values {
		expr, list := value(v)
		if !list {
			run = append(run, expr)
			continue
		}
		flush()
		parts = append(parts, expr)
	}
	flush()
	switch len(parts) {
	case 0:
		return "[]"
	case 1:
		return parts[0]
	}
	return "concat(" + strings.Join(parts, ", ") + ")"
}

func quotedList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = HCLQuote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// HCLQuote writes s as an HCL string literal: escaped as HCL escapes, and with its template
// sequences ("${", "%{") doubled so that they are taken literally.
func HCLQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, c)
		case (c == '$' || c == '%') && i+1 < len(s) && s[i+1] == '{':
			b.WriteByte(c)
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
