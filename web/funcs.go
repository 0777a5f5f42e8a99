package web

import (
	"fmt"
	"html/template"
	"sort"
	"strings"
	"time"

	"github.com/aviary-deploy/aviary/release"
)

var funcs = template.FuncMap{
	"percent": func(w float64) string {
		s := fmt.Sprintf("%.2f", w*100)
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
		return s + "%"
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("15:04:05")
	},
	"since": func(from, to time.Time) string {
		if from.IsZero() || to.IsZero() {
			return "—"
		}
		return to.Sub(from).Round(time.Second).String()
	},
	"phaseClass": phaseClass,
	"result": func(v *release.Verdict) string {
		if v == nil {
			return ""
		}
		return v.Result.String()
	},
	"numbers": verdictRows,
	"inc":     func(i int) int { return i + 1 },
	"orNone": func(s string) string {
		if s == "" {
			return "—"
		}
		return s
	},
	"stepName": func(r *release.Release, g *release.Gate) string {
		if g.Step == 0 {
			return "before any traffic moved"
		}
		return fmt.Sprintf("after step %d of %d", g.Step, len(r.Steps))
	},
	"verb": func(a release.DecisionAction) string {
		if a == release.DecideRollback {
			return "Roll back"
		}
		return "Approve"
	},
	"outcome": func(r *release.Release, a release.DecisionAction) string {
		if a == release.DecideRollback {
			return "Every function's alias goes back to its previous version, with no extra weights."
		}
		g := r.OpenGate()
		if g == nil {
			g = r.LastGate()
		}
		if g != nil && g.Step < len(r.Steps) {
			next := r.Steps[g.Step]
			return fmt.Sprintf("The release goes on to step %d of %d: %s of traffic on the new versions.", g.Step+1, len(r.Steps), strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", next.Weight*100), "0"), ".")+"%")
		}
		return "Every function's alias moves wholly to its new version (promotion)."
	},
}

// row is one function's numbers in a verdict.
type row struct {
	Function string
	Numbers  []kv
}

type kv struct {
	K string
	V string
}

func verdictRows(v *release.Verdict) []row {
	if v == nil {
		return nil
	}
	names := make([]string, 0, len(v.Functions))
	for n := range v.Functions {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []row
	for _, n := range names {
		m := v.Functions[n]
		ks := make([]string, 0, len(m))
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		r := row{Function: n}
		for _, k := range ks {
			r.Numbers = append(r.Numbers, kv{k, fmt.Sprintf("%.4g", m[k])})
		}
		out = append(out, r)
	}
	return out
}
