package release

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Target is a function a deploy wants running an artifact.
type Target struct {
	Name         string
	FunctionName string
	ArtifactKey  string
	CodeSha256   string
	// ImageUri, for an image function, is the image pinned to its digest; ArtifactKey is empty.
	ImageUri string
	// Field names where the manifest says what the function ships (functions.NAME.image or .zip…),
	// for problems.
	Field string
	// Configuration is what the release records of the managed configuration (no secret
	// values); Settings what it resolved to at plan time, never stored. Both nil: the manifest
	// manages none of the function's configuration.
	Configuration *Configuration
	Settings      *Settings
}

// PlanRow is what a deploy would do to one function.
type PlanRow struct {
	Target
	Current Current
	// Change: the alias does not serve the artifact, or the managed configuration, yet.
	Change bool
	// ConfigChanges are the managed configuration's differences from what the alias serves,
	// then (for a row that changes) those of the configuration the new version takes from
	// $LATEST (see carried).
	ConfigChanges []FieldChange
	// Problem, if set, stops the deploy before anything changes.
	Problem string
}

// Plan reads every target's function and alias (in parallel; nothing is changed) and says which
// would change. force accepts aliases that already carry extra weights.
func Plan(ctx context.Context, fleet Fleet, alias string, targets []Target, force bool, parallelism int) ([]PlanRow, error) {
	if parallelism <= 0 {
		parallelism = 16
	}
	rows := make([]PlanRow, len(targets))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallelism)
	for i, t := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cur, err := fleet.Inspect(ctx, t.FunctionName, alias)
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", t.FunctionName, err)
				return
			}
			rows[i] = judge(t, cur, alias, force)
		}()
	}
	wg.Wait()
	var failed []string
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err.Error())
		}
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		return nil, fmt.Errorf("reading the functions: %s", strings.Join(failed, "; "))
	}
	return rows, nil
}

func judge(t Target, cur Current, alias string, force bool) PlanRow {
	row := PlanRow{Target: t, Current: cur}
	switch {
	case !cur.Exists:
		row.Problem = fmt.Sprintf("function %s does not exist: create it with your infrastructure tool (Aviary ships code to existing functions)", t.FunctionName)
	case packageMismatch(t, cur) != "":
		row.Problem = packageMismatch(t, cur)
	case !cur.AliasExists:
		row.Change = true
		if t.Settings != nil {
			row.ConfigChanges = t.Settings.Changes(cur.LatestSettings)
		}
	default:
		row.Change = cur.AliasCodeSha256 != t.CodeSha256
		if t.Settings != nil {
			row.ConfigChanges = t.Settings.Changes(cur.AliasSettings)
			row.Change = row.Change || len(row.ConfigChanges) > 0
		}
		if row.Change {
			row.ConfigChanges = append(row.ConfigChanges, carried(t.Settings, cur.LatestSettings, cur.AliasSettings)...)
		}
		if len(cur.AliasWeights) > 0 && !force {
			var extra []string
			for v, w := range cur.AliasWeights {
				extra = append(extra, fmt.Sprintf("%s on version %s", percent(w), v))
			}
			sort.Strings(extra)
			row.Problem = fmt.Sprintf("alias %s of %s already routes %s besides version %s: another release is mid-way (see aviary status); roll it back or promote it, or pass --force to take the alias over",
				alias, t.FunctionName, strings.Join(extra, ", "), cur.AliasVersion)
		}
	}
	return row
}

// Problems lists what stops a plan from being deployed.
func Problems(rows []PlanRow) []string {
	var out []string
	for _, r := range rows {
		if r.Problem != "" {
			out = append(out, r.Problem)
		}
	}
	return out
}

// FunctionsOf turns the changed rows of a plan into a release's functions.
func FunctionsOf(rows []PlanRow) []Function {
	var fns []Function
	for _, r := range rows {
		if !r.Change {
			continue
		}
		fn := Function{
			Name: r.Name, FunctionName: r.FunctionName, ArtifactKey: r.ArtifactKey, CodeSha256: r.CodeSha256, ImageUri: r.ImageUri,
			BaseRevision: r.Current.LatestRevision, BaseCodeSha256: r.Current.LatestCodeSha256,
			Timeout: r.Current.Timeout, LogGroup: r.Current.LogGroup,
			Configuration: r.Configuration,
		}
		if r.Settings != nil && r.Settings.Timeout > fn.Timeout {
			fn.Timeout = r.Settings.Timeout // invocations of the new version may run this long
		}
		switch {
		case !r.Current.AliasExists:
			fn.AliasMissing = true
		case r.Current.AliasVersion == "$LATEST":
			fn.PinnedFromLatest = true
			fn.AliasRevision = r.Current.AliasRevision
		default:
			fn.Previous = r.Current.AliasVersion
			fn.AliasRevision = r.Current.AliasRevision
		}
		fns = append(fns, fn)
	}
	return fns
}

// packageMismatch says why a target cannot ship to its function: Lambda cannot change a
// function's package type, so an image goes only to an Image function and a zip only to a Zip one.
func packageMismatch(t Target, cur Current) string {
	image := cur.PackageType == "Image"
	field := t.Field
	if field == "" {
		field = "functions." + t.Name
	}
	switch {
	case t.ImageUri != "" && !image:
		return fmt.Sprintf("%s: function %s is a Zip function; an image cannot be deployed to it (Lambda cannot change a function's package type): create it with package type Image, or ship a zip", field, t.FunctionName)
	case t.ImageUri == "" && image:
		return fmt.Sprintf("%s: function %s is an Image function; a zip cannot be deployed to it (Lambda cannot change a function's package type): name its image with image:, or ship to a Zip function", field, t.FunctionName)
	}
	return ""
}

// carried lists how the configuration a new version takes from $LATEST — all of it but what the
// manifest manages — differs from what the alias serves: a rolled-back configuration release
// leaves its configuration in $LATEST, and Terraform or the console may have changed it. Every
// environment value is masked: none of them is the manifest's.
func carried(managed, latest, alias *Settings) []FieldChange {
	if latest == nil || alias == nil {
		return nil
	}
	w := *latest
	if managed != nil {
		if managed.Environment != nil {
			w.Environment = nil
		}
		if managed.MemorySize != 0 {
			w.MemorySize = 0
		}
		if managed.Timeout != 0 {
			w.Timeout = 0
		}
		if managed.Layers != nil {
			w.Layers = nil
		}
		if managed.Architectures != nil {
			w.Architectures = nil
		}
	}
	w.Secret = map[string]bool{}
	for k := range w.Environment {
		w.Secret[k] = true
	}
	for k := range alias.Environment {
		w.Secret[k] = true
	}
	return w.Changes(alias)
}
