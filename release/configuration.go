package release

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/aviary-deploy/aviary/configvalue"
)

// Settings are a function's configuration as far as a release manages it. A nil Environment or
// Layers, and a zero MemorySize or Timeout, are not managed (Settings read from Lambda have them
// all). Environment is managed as a whole map.
type Settings struct {
	Environment   map[string]string `json:"environment"`
	MemorySize    int               `json:"memorySize,omitempty"`
	Timeout       int               `json:"timeout,omitempty"`
	Layers        []string          `json:"layers"`
	Architectures []string          `json:"architectures,omitempty"`
	// Secret names the variables whose values must never be shown or stored: those filled from
	// ${VAR} or an SSM SecureString. Only resolved Settings have it.
	Secret map[string]bool `json:"-"`
}

// Configuration is the configuration a release applies to a function, recorded WITHOUT any
// value that came from outside the manifest: Template holds the values as the manifest wrote
// them (${VAR}, {{ssm:/path}}), SSMVersions the version of every parameter read at plan time,
// and Digest a salted key derivation (PBKDF2) of what the ${VAR} references resolved to.
// Whoever publishes resolves the template again — parameters at exactly their planned versions,
// variables from its own environment — and refuses when the digest differs: what is published is
// what the plan showed, and the store never holds a secret.
type Configuration struct {
	Template Settings `json:"template"`
	// SSMVersions maps each parameter name to the version plan read.
	SSMVersions map[string]string `json:"ssmVersions,omitempty"`
	Salt        string            `json:"salt,omitempty"`
	Digest      string            `json:"digest,omitempty"`
}

// Fields names what the configuration manages, as the manifest writes them.
func (s Settings) Fields() []string {
	var out []string
	if s.Environment != nil {
		out = append(out, "environment")
	}
	if s.MemorySize != 0 {
		out = append(out, "memory")
	}
	if s.Timeout != 0 {
		out = append(out, "timeout")
	}
	if s.Layers != nil {
		out = append(out, "layers")
	}
	if s.Architectures != nil {
		out = append(out, "architectures")
	}
	return out
}

// FieldChange is one managed field that differs: Field as the manifest names it (environment.KEY,
// memory, timeout, layers, architectures), Old and New as they may be shown.
type FieldChange struct {
	Field string `json:"field"`
	Old   string `json:"old,omitempty"`
	New   string `json:"new,omitempty"`
	// Masked: the values are secret (or look it) and Old/New say only whether they are set.
	Masked bool `json:"masked,omitempty"`
}

func (c FieldChange) String() string {
	switch {
	case c.Masked && c.Old == "" && c.New != "":
		return c.Field + ": (set, masked)"
	case c.Masked && c.New == "":
		return c.Field + ": (removed)"
	case c.Masked:
		return c.Field + ": (changed, masked)"
	case c.Old == "":
		return fmt.Sprintf("%s: (unset) → %q", c.Field, c.New)
	case c.New == "":
		return fmt.Sprintf("%s: %q → (removed)", c.Field, c.Old)
	}
	return fmt.Sprintf("%s: %q → %q", c.Field, c.Old, c.New)
}

const maskedValue = "***"

// Changes lists what must change for have (as Lambda reports it) to match want, field by field,
// managed fields only; secret and secret-looking values masked. nil have: the function has
// nothing yet (every managed field changes).
func (want Settings) Changes(have *Settings) []FieldChange {
	var h Settings
	if have != nil {
		h = *have
	}
	var out []FieldChange
	if want.Environment != nil {
		keys := map[string]bool{}
		for k := range want.Environment {
			keys[k] = true
		}
		for k := range h.Environment {
			keys[k] = true
		}
		for _, k := range sortedKeys(keys) {
			o, hadIt := h.Environment[k]
			n, wantIt := want.Environment[k]
			if hadIt == wantIt && o == n {
				continue
			}
			c := FieldChange{Field: "environment." + k, Old: o, New: n}
			// A variable the manifest drops was set outside it (Terraform, the console): its
			// value is not the manifest's to show, in a plan that lands in CI logs and pull
			// requests, whatever its name.
			if want.Secret[k] || configvalue.SecretLooking(k) || !wantIt {
				c.Masked = true
				c.Old, c.New = mask(hadIt), mask(wantIt)
			}
			if !hadIt {
				c.Old = ""
			}
			out = append(out, c)
		}
	}
	if want.MemorySize != 0 && want.MemorySize != h.MemorySize {
		out = append(out, FieldChange{Field: "memory", Old: num(h.MemorySize), New: strconv.Itoa(want.MemorySize)})
	}
	if want.Timeout != 0 && want.Timeout != h.Timeout {
		out = append(out, FieldChange{Field: "timeout", Old: num(h.Timeout), New: strconv.Itoa(want.Timeout)})
	}
	if want.Layers != nil && !slices.Equal(want.Layers, h.Layers) {
		out = append(out, FieldChange{Field: "layers", Old: strings.Join(h.Layers, ","), New: strings.Join(want.Layers, ",")})
	}
	if want.Architectures != nil && !slices.Equal(want.Architectures, archOrDefault(h.Architectures)) {
		out = append(out, FieldChange{Field: "architectures", Old: strings.Join(archOrDefault(h.Architectures), ","), New: strings.Join(want.Architectures, ",")})
	}
	return out
}

// ConfigurationOnly reports whether the changes need only UpdateFunctionConfiguration, not a
// code update (architectures are set with the code).
func ConfigurationOnly(cs []FieldChange) bool {
	for _, c := range cs {
		if c.Field == "architectures" {
			return false
		}
	}
	return true
}

// archOrDefault: Lambda reports no architectures for a function created before they existed,
// which runs on x86_64.
func archOrDefault(a []string) []string {
	if len(a) == 0 {
		return []string{"x86_64"}
	}
	return a
}

func mask(set bool) string {
	if set {
		return maskedValue
	}
	return ""
}

func num(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
