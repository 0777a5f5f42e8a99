package cloudfront

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/aviary-deploy/aviary/sandbox/limits"
	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

// apiVersion prefixes every path of the API.
const apiVersion = "/2020-05-31"

// Handler serves the CloudFront API; l is asked about every request once its operation is known.
func (s *Service) Handler(l limits.Limiter) http.Handler {
	api := &protocol.Service{Name: "cloudfront", Model: apiModel, Limits: l,
		Classify: func(req *protocol.Request, _ any) (string, string) { return req.Label("Id"), "" },
		DecodeError: func(err error) *protocol.Error {
			return &protocol.Error{Code: "MalformedXML", Status: http.StatusBadRequest,
				Message: "The XML document you provided was not well-formed or did not validate against our published schema: " + err.Error()}
		},
	}
	protocol.Route(api, "POST "+apiVersion+"/distribution", "CreateDistribution", http.StatusCreated,
		func(_ context.Context, _ *protocol.Request, in *createInput) (*distributionOutput, *protocol.Error) {
			return s.create(in.Config)
		})
	protocol.Route(api, "GET "+apiVersion+"/distribution", "ListDistributions", 0,
		func(_ context.Context, _ *protocol.Request, in *listInput) (*listOutput, *protocol.Error) {
			return s.list(in)
		})
	protocol.Route(api, "GET "+apiVersion+"/distribution/{Id}", "GetDistribution", 0,
		func(_ context.Context, _ *protocol.Request, in *idInput) (*distributionOutput, *protocol.Error) {
			return s.get(in.ID)
		})
	protocol.Route(api, "GET "+apiVersion+"/distribution/{Id}/config", "GetDistributionConfig", 0,
		func(_ context.Context, _ *protocol.Request, in *idInput) (*configOutput, *protocol.Error) {
			return s.getConfig(in.ID)
		})
	protocol.Route(api, "PUT "+apiVersion+"/distribution/{Id}/config", "UpdateDistribution", 0,
		func(_ context.Context, _ *protocol.Request, in *updateInput) (*distributionOutput, *protocol.Error) {
			return s.update(in)
		})
	protocol.Route(api, "DELETE "+apiVersion+"/distribution/{Id}", "DeleteDistribution", http.StatusNoContent,
		func(_ context.Context, _ *protocol.Request, in *idInput) (*struct{}, *protocol.Error) {
			return nil, s.delete(in.ID, in.IfMatch)
		})
	return api
}

type createInput struct {
	Config *configPayload `aws:"payload"`
}

type idInput struct {
	ID      string `aws:"uri:Id"`
	IfMatch string `aws:"header:If-Match"`
}

type updateInput struct {
	ID      string         `aws:"uri:Id"`
	IfMatch string         `aws:"header:If-Match"`
	Config  *configPayload `aws:"payload"`
}

type listInput struct {
	Marker   string  `aws:"query:Marker"`
	MaxItems *string `aws:"query:MaxItems"`
}

// rawXML is XML written as it is.
type rawXML struct {
	Inner string `xml:",innerxml"`
}

type activeTrusted struct {
	Enabled  bool `xml:"Enabled"`
	Quantity int  `xml:"Quantity"`
}

type distributionXML struct {
	ID                            string             `xml:"Id"`
	ARN                           string             `xml:"ARN"`
	Status                        string             `xml:"Status"`
	LastModifiedTime              protocol.Timestamp `xml:"LastModifiedTime"`
	InProgressInvalidationBatches int                `xml:"InProgressInvalidationBatches"`
	DomainName                    string             `xml:"DomainName"`
	ActiveTrustedSigners          activeTrusted      `xml:"ActiveTrustedSigners"`
	ActiveTrustedKeyGroups        activeTrusted      `xml:"ActiveTrustedKeyGroups"`
	DistributionConfig            rawXML             `xml:"DistributionConfig"`
}

type distributionOutput struct {
	ETag         string           `aws:"header:ETag"`
	Location     string           `aws:"header:Location"`
	Distribution *distributionXML `aws:"payload" xml:"Distribution"`
}

type configOutput struct {
	ETag   string  `aws:"header:ETag"`
	Config *rawXML `aws:"payload" xml:"DistributionConfig"`
}

type distributionList struct {
	Marker      string  `xml:"Marker"`
	NextMarker  string  `xml:"NextMarker,omitempty"`
	MaxItems    int     `xml:"MaxItems"`
	IsTruncated bool    `xml:"IsTruncated"`
	Quantity    int     `xml:"Quantity"`
	Items       *rawXML `xml:"Items,omitempty"`
}

type listOutput struct {
	List *distributionList `aws:"payload" xml:"DistributionList"`
}

func noSuchDistribution() *protocol.Error {
	return protocol.Errorf("NoSuchDistribution", "The specified distribution does not exist.")
}

// output is a distribution as Create, Get and Update answer it; status overrides the computed one.
func (s *Service) output(d *distribution, status string) *distributionOutput {
	if status == "" {
		status = d.status(s.cfg.Now())
	}
	return &distributionOutput{ETag: d.ETag, Distribution: &distributionXML{
		ID: d.ID, ARN: d.ARN, Status: status, LastModifiedTime: protocol.Timestamp{Time: d.LastModified},
		DomainName: d.DomainName, DistributionConfig: rawXML{Inner: d.Config},
	}}
}

// associate validates a config's Lambda@Edge associations and makes the distribution hold their
// versions (replicated). The versions are held before Lambda is asked about them, so that a
// DeleteFunction racing this request finds them replicated; on failure the distribution holds
// what it held before. The caller holds s.mu.
func (s *Service) associate(id string, before, arns []string) ([]string, *protocol.Error) {
	var qualified []string
	s.replicas.add(id, arns)
	for _, a := range arns {
		fn, v, err := s.checkAssociation(a)
		if err != nil {
			s.replicas.set(id, before, false)
			return nil, err
		}
		qualified = append(qualified, fn+":"+v)
	}
	slices.Sort(qualified)
	qualified = slices.Compact(qualified)
	s.replicas.set(id, qualified, true)
	return qualified, nil
}

func (s *Service) create(p *configPayload) (*distributionOutput, *protocol.Error) {
	c, err := check(p)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.dists {
		if d.CallerReference != c.callerReference {
			continue
		}
		if strings.TrimSpace(d.Config) == strings.TrimSpace(p.Inner) {
			// The same request again: AWS answers what it answered the first time.
			out := s.output(d, "")
			out.Location = s.location(d.ID)
			return out, nil
		}
		return nil, protocol.Errorf("DistributionAlreadyExists",
			"The caller reference that you are using to create a distribution is associated with another distribution. Already exists: %s", d.ID)
	}
	id := newID()
	for s.dists[id] != nil {
		id = newID()
	}
	assocs, err := s.associate(id, nil, c.associations)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	d := &distribution{
		ID: id, ARN: "arn:aws:cloudfront::" + s.cfg.Account + ":distribution/" + id, DomainName: newDomainName(),
		ETag: newETag(), CallerReference: c.callerReference, Config: p.Inner, Enabled: c.enabled,
		LastModified: now, DeployedAt: now.Add(s.cfg.DeployDelay), Associations: assocs,
	}
	s.dists[id] = d
	s.save()
	out := s.output(d, "InProgress")
	out.Location = s.location(id)
	return out, nil
}

func (s *Service) location(id string) string {
	return "https://cloudfront.amazonaws.com" + apiVersion + "/distribution/" + id
}

func (s *Service) get(id string) (*distributionOutput, *protocol.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.dists[id]
	if !ok {
		return nil, noSuchDistribution()
	}
	return s.output(d, ""), nil
}

func (s *Service) getConfig(id string) (*configOutput, *protocol.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.dists[id]
	if !ok {
		return nil, noSuchDistribution()
	}
	return &configOutput{ETag: d.ETag, Config: &rawXML{Inner: d.Config}}, nil
}

// precondition checks If-Match against the distribution's ETag.
func precondition(d *distribution, ifMatch string) *protocol.Error {
	switch ifMatch {
	case "":
		return protocol.Errorf("InvalidIfMatchVersion", "The If-Match version is missing or not valid for the resource.")
	case d.ETag:
		return nil
	}
	return protocol.Errorf("PreconditionFailed", "The request failed because it didn't meet the preconditions in one or more request-header fields.")
}

func (s *Service) update(in *updateInput) (*distributionOutput, *protocol.Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.dists[in.ID]
	if !ok {
		return nil, noSuchDistribution()
	}
	if err := precondition(d, in.IfMatch); err != nil {
		return nil, err
	}
	c, err := check(in.Config)
	if err != nil {
		return nil, err
	}
	if c.callerReference != d.CallerReference {
		return nil, protocol.Errorf("IllegalUpdate", "The CallerReference of a distribution cannot be changed.")
	}
	assocs, err := s.associate(d.ID, d.Associations, c.associations)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	d.Config, d.Enabled, d.Associations = in.Config.Inner, c.enabled, assocs
	d.ETag, d.LastModified, d.DeployedAt = newETag(), now, now.Add(s.cfg.DeployDelay)
	s.save()
	return s.output(d, "InProgress"), nil
}

func (s *Service) delete(id, ifMatch string) *protocol.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.dists[id]
	if !ok {
		return noSuchDistribution()
	}
	if err := precondition(d, ifMatch); err != nil {
		return err
	}
	if d.Enabled || d.status(s.cfg.Now()) != "Deployed" {
		return protocol.Errorf("DistributionNotDisabled", "The distribution you are trying to delete has not been disabled.")
	}
	delete(s.dists, id)
	s.replicas.set(id, nil, true)
	s.save()
	return nil
}

// list pages through the distributions in the order of their ids; Marker is the last id of the
// previous page.
func (s *Service) list(in *listInput) (*listOutput, *protocol.Error) {
	maxItems := 100
	if in.MaxItems != nil {
		n, err := strconv.Atoi(*in.MaxItems)
		if err != nil || n < 0 {
			return nil, protocol.Errorf("InvalidArgument", "MaxItems must be a non-negative integer.")
		}
		maxItems = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id := range s.dists {
		if id > in.Marker {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	out := &distributionList{Marker: in.Marker, MaxItems: maxItems}
	if len(ids) > maxItems {
		ids = ids[:maxItems]
		out.IsTruncated = true
		if maxItems > 0 {
			out.NextMarker = ids[len(ids)-1]
		}
	}
	var items strings.Builder
	for _, id := range ids {
		sum, err := s.summaryXML(s.dists[id])
		if err != nil {
			return nil, protocol.Internal(err)
		}
		items.WriteString("<DistributionSummary>" + sum + "</DistributionSummary>")
	}
	out.Quantity = len(ids)
	if len(ids) > 0 {
		out.Items = &rawXML{Inner: items.String()}
	}
	return &listOutput{List: out}, nil
}
