// Package configvalue reads the references a function's configuration value may hold, and fills
// them in: ${VAR} (the environment of the process that resolves it) and {{ssm:/path}} (an SSM
// Parameter Store parameter, decrypted). A value is literal text with any number of references.
//
// The rule it keeps: a reference is resolved or the whole value is refused; a value is never
// half-filled, and a reference that cannot be resolved is an error, never an empty string.
package configvalue

import (
	"context"
	"fmt"
	"regexp"
	"strings"
)

// Kind is where a reference's value comes from.
type Kind string

// Kinds of reference.
const (
	Env Kind = "env" // ${VAR}
	SSM Kind = "ssm" // {{ssm:/path}}
)

// Ref is one reference in a value.
type Ref struct {
	Kind Kind
	// Name is the variable's name (Env) or the parameter's name (SSM), as written.
	Name string
}

func (r Ref) String() string {
	if r.Kind == Env {
		return "${" + r.Name + "}"
	}
	return "{{ssm:" + r.Name + "}}"
}

var (
	refRE = regexp.MustCompile(`\$\{([^}]*)\}|\{\{\s*ssm:([^}]*)\}\}`)
	// envNameRE: a POSIX-ish variable name.
	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// ssmNameRE: SSM's parameter names (letters, digits, . - _ and /), optionally with a
	// :version or :label selector, as GetParameter accepts.
	ssmNameRE = regexp.MustCompile(`^/?[a-zA-Z0-9_.\-/]+(:[a-zA-Z0-9_.\-]{1,100})?$`)
)

// Refs lists the references in s, or says why one is malformed.
func Refs(s string) ([]Ref, error) {
	var out []Ref
	for _, m := range refRE.FindAllStringSubmatchIndex(s, -1) {
		if m[2] >= 0 {
			name := s[m[2]:m[3]]
			if !envNameRE.MatchString(name) {
				return nil, fmt.Errorf("${%s} is not an environment variable reference (write ${NAME}, letters, digits and _)", name)
			}
			out = append(out, Ref{Kind: Env, Name: name})
			continue
		}
		name := strings.TrimSpace(s[m[4]:m[5]])
		if !ssmNameRE.MatchString(name) || strings.Contains(name, "//") {
			return nil, fmt.Errorf("{{ssm:%s}} does not name an SSM parameter (write {{ssm:/path/to/parameter}})", name)
		}
		out = append(out, Ref{Kind: SSM, Name: name})
	}
	return out, nil
}

// Resolved is a reference's value and what is known of it.
type Resolved struct {
	Value string
	// Secret: the value must not be shown (an SSM SecureString, or any ${VAR}: the process
	// environment is where CI keeps its secrets).
	Secret bool
	// Version is an SSM parameter's version, so that another process can read the same value
	// later (name:version); empty for ${VAR}.
	Version string
}

// Resolver resolves one reference.
type Resolver interface {
	Resolve(ctx context.Context, r Ref) (Resolved, error)
}

// Fill replaces every reference in s by its value. secret says whether any was secret.
func Fill(ctx context.Context, s string, res Resolver) (value string, secret bool, err error) {
	if _, err := Refs(s); err != nil {
		return "", false, err
	}
	var b strings.Builder
	last := 0
	for _, m := range refRE.FindAllStringSubmatchIndex(s, -1) {
		b.WriteString(s[last:m[0]])
		last = m[1]
		ref := Ref{Kind: Env}
		if m[2] >= 0 {
			ref.Name = s[m[2]:m[3]]
		} else {
			ref = Ref{Kind: SSM, Name: strings.TrimSpace(s[m[4]:m[5]])}
		}
		r, err := res.Resolve(ctx, ref)
		if err != nil {
			return "", false, err
		}
		secret = secret || r.Secret
		b.WriteString(r.Value)
	}
	b.WriteString(s[last:])
	return b.String(), secret, nil
}

// HasRefs reports whether s holds any reference.
func HasRefs(s string) bool { return refRE.MatchString(s) }

// secretKeyRE matches variable names that usually hold secrets.
var secretKeyRE = regexp.MustCompile(`(?i)SECRET|TOKEN|PASSW|PWD|KEY|CREDENTIAL|PRIVATE|AUTH|SIGNATURE|CERT|DSN|SESSION|COOKIE|SALT`)

// SecretLooking reports whether an environment variable's name suggests it holds a secret, so
// that its value is masked wherever it is shown.
func SecretLooking(key string) bool { return secretKeyRE.MatchString(key) }
