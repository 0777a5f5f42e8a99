package lambda

import (
	"maps"
	"slices"
	"strconv"
	"time"
)

// Provisioned concurrency is stored per qualifier (a published version or an alias) and answered
// as Lambda answers it: IN_PROGRESS until Config.UpdateDelay has passed, then READY with every
// requested environment allocated. The sandbox does not pre-warm environments for it.
//
// DeleteFunction of a version removes the version's provisioned-concurrency configuration with it
// (AWS documents no refusal); an alias's configuration stays, as the alias does.

const (
	pcInProgress = "IN_PROGRESS"
	pcReady      = "READY"

	pcLastModifiedLayout = "2006-01-02T15:04:05-0700"
)

// provisioned is one provisioned-concurrency configuration; exported fields are persisted.
type provisioned struct {
	Requested    int
	LastModified time.Time
	ReadyAt      time.Time
}

type putProvisionedInput struct {
	ProvisionedConcurrentExecutions *int `json:"ProvisionedConcurrentExecutions"`
}

type provisionedOutput struct {
	RequestedProvisionedConcurrentExecutions int    `json:"RequestedProvisionedConcurrentExecutions"`
	AvailableProvisionedConcurrentExecutions int    `json:"AvailableProvisionedConcurrentExecutions"`
	AllocatedProvisionedConcurrentExecutions int    `json:"AllocatedProvisionedConcurrentExecutions"`
	Status                                   string `json:"Status"`
	StatusReason                             string `json:"StatusReason,omitempty"`
	LastModified                             string `json:"LastModified"`
}

type provisionedListItem struct {
	FunctionArn string `json:"FunctionArn"`
	provisionedOutput
}

type listProvisionedOutput struct {
	ProvisionedConcurrencyConfigs []provisionedListItem `json:"ProvisionedConcurrencyConfigs"`
	NextMarker                    *string               `json:"NextMarker,omitempty"`
}

func (p *provisioned) output(now time.Time) provisionedOutput {
	out := provisionedOutput{RequestedProvisionedConcurrentExecutions: p.Requested, Status: pcInProgress,
		LastModified: p.LastModified.UTC().Format(pcLastModifiedLayout)}
	if !now.Before(p.ReadyAt) {
		out.Status = pcReady
		out.AvailableProvisionedConcurrentExecutions = p.Requested
		out.AllocatedProvisionedConcurrentExecutions = p.Requested
	}
	return out
}

// provisionedTarget resolves the function and qualifier a provisioned-concurrency call names:
// the qualifier comes from the Qualifier parameter or the function name, and must name a
// published version or an alias of one.
func (s *Service) provisionedTarget(raw, qualifier string) (*function, string, *APIError) {
	f, q, err := s.lookup(raw)
	if err != nil {
		return nil, "", err
	}
	if q, err = mergeQualifier(q, qualifier); err != nil {
		return nil, "", err
	}
	if q == "" {
		return nil, "", validation("qualifier", "null", "Member must not be null")
	}
	if q == latest {
		return nil, "", invalidParam("Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
	}
	v, _, err := s.resolve(f, q)
	if err != nil {
		return nil, "", err
	}
	if v.Version == latest {
		return nil, "", invalidParam("Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
	}
	return f, q, nil
}

func (s *Service) putProvisioned(raw, qualifier string, in putProvisionedInput) (provisionedOutput, *APIError) {
	if in.ProvisionedConcurrentExecutions == nil {
		return provisionedOutput{}, validation("provisionedConcurrentExecutions", "null", "Member must not be null")
	}
	n := *in.ProvisionedConcurrentExecutions
	if n < 1 {
		return provisionedOutput{}, validation("provisionedConcurrentExecutions", strconv.Itoa(n), "Member must have value greater than or equal to 1")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, q, err := s.provisionedTarget(raw, qualifier)
	if err != nil {
		return provisionedOutput{}, err
	}
	// A version and an alias pointing at it cannot both carry provisioned concurrency.
	if a, ok := f.Aliases[q]; ok {
		if _, has := f.Provisioned[a.FunctionVersion]; has {
			return provisionedOutput{}, conflict("Alias can't be allocated provisioned concurrency because version %s that it points to already has provisioned concurrency.", a.FunctionVersion)
		}
	} else {
		for _, name := range f.aliasesReferencing(q) {
			if _, has := f.Provisioned[name]; has {
				return provisionedOutput{}, conflict("Version can't be allocated provisioned concurrency because alias %s that points to it already has provisioned concurrency.", name)
			}
		}
	}
	if f.Reserved != nil && n > *f.Reserved {
		return provisionedOutput{}, invalidParam("Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function")
	}
	if floor := s.unreservedFloor(); f.Reserved == nil && n > s.unreservedLocked()-floor {
		// Without a reservation, provisioned environments come out of the unreserved pool.
		return provisionedOutput{}, invalidParam("Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [%d].", floor)
	}
	now := s.cfg.Now()
	if f.Provisioned == nil {
		f.Provisioned = map[string]*provisioned{}
	}
	p := &provisioned{Requested: n, LastModified: now, ReadyAt: now.Add(s.cfg.UpdateDelay)}
	f.Provisioned[q] = p
	s.save()
	out := p.output(now)
	if s.cfg.UpdateDelay == 0 {
		// AWS answers Put with IN_PROGRESS; allocation finishes afterwards.
		out = provisionedOutput{RequestedProvisionedConcurrentExecutions: n, Status: pcInProgress, LastModified: out.LastModified}
	}
	return out, nil
}

func (s *Service) getProvisioned(raw, qualifier string) (provisionedOutput, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, q, err := s.provisionedTarget(raw, qualifier)
	if err != nil {
		return provisionedOutput{}, err
	}
	p, ok := f.Provisioned[q]
	if !ok {
		return provisionedOutput{}, apiErr("ProvisionedConcurrencyConfigNotFoundException", "No Provisioned Concurrency Config found for this function")
	}
	return p.output(s.cfg.Now()), nil
}

func (s *Service) deleteProvisioned(raw, qualifier string) *APIError {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, q, err := s.provisionedTarget(raw, qualifier)
	if err != nil {
		return err
	}
	delete(f.Provisioned, q)
	s.save()
	return nil
}

func (s *Service) listProvisioned(raw, marker string, maxItems int) (listProvisionedOutput, *APIError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, q, err := s.lookup(raw)
	if err == nil && q != "" {
		err = invalidParam("Unsupported qualifier: ListProvisionedConcurrencyConfigs lists every qualifier of the function.")
	}
	if err != nil {
		return listProvisionedOutput{}, err
	}
	now := s.cfg.Now()
	quals := slices.SortedFunc(maps.Keys(f.Provisioned), func(a, b string) int {
		// Versions in numeric order, then aliases by name.
		an, aerr := strconv.Atoi(a)
		bn, berr := strconv.Atoi(b)
		switch {
		case aerr == nil && berr == nil:
			return an - bn
		case aerr == nil:
			return -1
		case berr == nil:
			return 1
		}
		if a < b {
			return -1
		}
		if a > b {
			return 1
		}
		return 0
	})
	var all []provisionedListItem
	for _, q := range quals {
		all = append(all, provisionedListItem{FunctionArn: s.qualifiedARN(f.Name, q), provisionedOutput: f.Provisioned[q].output(now)})
	}
	page, next, err := paginate(all, marker, min(maxItems, 50))
	if err != nil {
		return listProvisionedOutput{}, err
	}
	if page == nil {
		page = []provisionedListItem{}
	}
	return listProvisionedOutput{ProvisionedConcurrencyConfigs: page, NextMarker: next}, nil
}
