package cloudfront

import (
	"encoding/xml"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/aviary-deploy/aviary/sandbox/protocol"
)

// configPayload is a DistributionConfig as the client sent it: its raw inner XML, kept as is, and
// the element tree the sandbox validates.
type configPayload struct {
	Inner string  `xml:",innerxml"`
	Nodes []*node `xml:",any"`
}

// node is one element of a config.
type node struct {
	XMLName xml.Name
	Inner   string  `xml:",innerxml"`
	Text    string  `xml:",chardata"`
	Nodes   []*node `xml:",any"`
}

func (n *node) child(name string) *node {
	if n == nil {
		return nil
	}
	for _, c := range n.Nodes {
		if c.XMLName.Local == name {
			return c
		}
	}
	return nil
}

// items are the elements of a list member (<Items><X>…</X>…</Items>).
func (n *node) items() []*node {
	if it := n.child("Items"); it != nil {
		return it.Nodes
	}
	return nil
}

func (n *node) text() string {
	if n == nil {
		return ""
	}
	return strings.TrimSpace(n.Text)
}

// raw is the element as XML.
func (n *node) raw() string {
	return "<" + n.XMLName.Local + ">" + n.Inner + "</" + n.XMLName.Local + ">"
}

// checkedConfig is what the sandbox learns from a valid config.
type checkedConfig struct {
	callerReference string
	enabled         bool
	// associations are the Lambda@Edge ARNs of every cache behavior, as sent.
	associations []string
}

// check validates a config as AWS does before it looks at Lambda.
func check(p *configPayload) (*checkedConfig, *protocol.Error) {
	if p == nil {
		return nil, protocol.Errorf("MissingBody", "This operation requires a body. Ensure that the body is present and the Content-Type header is set.")
	}
	root := &node{XMLName: xml.Name{Local: "DistributionConfig"}, Nodes: p.Nodes}
	c := &checkedConfig{callerReference: root.child("CallerReference").text()}
	if c.callerReference == "" {
		return nil, protocol.Errorf("InvalidArgument", "The parameter CallerReference is required.")
	}
	for _, name := range []string{"Origins", "DefaultCacheBehavior", "Comment", "Enabled"} {
		if root.child(name) == nil {
			return nil, protocol.Errorf("InvalidArgument", "The parameter %s is required.", name)
		}
	}
	enabled, err := strconv.ParseBool(root.child("Enabled").text())
	if err != nil {
		return nil, protocol.Errorf("InvalidArgument", "The parameter Enabled must be true or false.")
	}
	c.enabled = enabled
	if err := checkQuantities(root); err != nil {
		return nil, err
	}
	behaviors := []*node{root.child("DefaultCacheBehavior")}
	behaviors = append(behaviors, root.child("CacheBehaviors").items()...)
	for _, b := range behaviors {
		for _, a := range b.child("LambdaFunctionAssociations").items() {
			c.associations = append(c.associations, a.child("LambdaFunctionARN").text())
		}
	}
	return c, nil
}

// checkQuantities checks that every list's Quantity is the number of its Items, anywhere in the
// config (aliases, origins, cache behaviors, headers, Lambda associations...).
func checkQuantities(n *node) *protocol.Error {
	if q := n.child("Quantity"); q != nil {
		want, err := strconv.Atoi(q.text())
		if err != nil || want != len(n.items()) {
			return protocol.Errorf("InconsistentQuantities", "The value of Quantity and the size of Items don't match.")
		}
	}
	for _, c := range n.Nodes {
		if err := checkQuantities(c); err != nil {
			return err
		}
	}
	return nil
}

var versionRE = regexp.MustCompile(`^[0-9]+$`)

// checkAssociation validates one Lambda@Edge ARN: a qualified ARN of a published version of a
// function in us-east-1, which must exist. It returns the unqualified ARN and the version.
func (s *Service) checkAssociation(arn string) (string, string, *protocol.Error) {
	parts := strings.Split(arn, ":")
	if len(parts) != 8 || parts[0] != "arn" || parts[2] != "lambda" || parts[5] != "function" || !versionRE.MatchString(parts[7]) {
		return "", "", protocol.Errorf("InvalidLambdaFunctionAssociation",
			"The function ARN must reference a specific function version. (The ARN must end with the version number.) ARN: %s", arn)
	}
	if parts[3] != "us-east-1" {
		return "", "", protocol.Errorf("InvalidLambdaFunctionAssociation", "The function must be in region 'us-east-1'. ARN: %s", arn)
	}
	fn := strings.Join(parts[:7], ":")
	if s.cfg.Functions == nil || !s.cfg.Functions.HasVersion(fn, parts[7]) {
		// The sandbox's wording: AWS's own message for a missing version is not documented.
		return "", "", protocol.Errorf("InvalidLambdaFunctionAssociation",
			"The function ARN must reference an existing function version. Lambda has no version %s of the function. ARN: %s", parts[7], arn)
	}
	return fn, parts[7], nil
}

// summary is a DistributionSummary's members that come from the config, in the model's order,
// with what AWS reports for a member the config left out.
var summary = []struct{ name, missing string }{
	{"Aliases", "<Quantity>0</Quantity>"},
	{"Origins", "<Quantity>0</Quantity>"},
	{"OriginGroups", "<Quantity>0</Quantity>"},
	{"DefaultCacheBehavior", ""},
	{"CacheBehaviors", "<Quantity>0</Quantity>"},
	{"CustomErrorResponses", "<Quantity>0</Quantity>"},
	{"Comment", ""},
	{"PriceClass", "PriceClass_All"},
	{"Enabled", "false"},
	{"ViewerCertificate", "<CloudFrontDefaultCertificate>true</CloudFrontDefaultCertificate><SSLSupportMethod>vip</SSLSupportMethod><MinimumProtocolVersion>TLSv1</MinimumProtocolVersion><CertificateSource>cloudfront</CertificateSource>"},
	{"Restrictions", "<GeoRestriction><RestrictionType>none</RestrictionType><Quantity>0</Quantity></GeoRestriction>"},
	{"WebACLId", ""},
	{"HttpVersion", "http2"},
	{"IsIPV6Enabled", "false"},
	{"Staging", "false"},
	{"ConnectionMode", "-"},
	{"AnycastIpListId", "-"},
	{"ViewerMtlsConfig", "-"},
	{"ConnectionFunctionAssociation", "-"},
}

// summaryXML is the inner XML of a distribution's DistributionSummary.
func (s *Service) summaryXML(d *distribution) (string, error) {
	var p configPayload
	if err := xml.Unmarshal([]byte("<DistributionConfig>"+d.Config+"</DistributionConfig>"), &p); err != nil {
		return "", fmt.Errorf("distribution %s: stored config: %w", d.ID, err)
	}
	root := &node{Nodes: p.Nodes}
	var b strings.Builder
	el := func(name, inner string) { b.WriteString("<" + name + ">" + inner + "</" + name + ">") }
	el("Id", d.ID)
	el("ARN", d.ARN)
	el("ETag", d.ETag)
	el("Status", d.status(s.cfg.Now()))
	ts, _ := protocol.Timestamp{Time: d.LastModified}.MarshalText()
	el("LastModifiedTime", string(ts))
	el("DomainName", d.DomainName)
	for _, m := range summary {
		switch c := root.child(m.name); {
		case c != nil:
			b.WriteString(c.raw())
		case m.missing != "-":
			el(m.name, m.missing)
		}
	}
	return b.String(), nil
}
