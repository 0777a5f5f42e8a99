package keeper

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Notification is one deployment notification found in an event.
type Notification struct {
	DeploymentID string
	// Event names what happened: the trigger's name and status (SNS) or the state (EventBridge).
	Event string
}

// ErrMalformed marks an event or message the keeper cannot read.
var ErrMalformed = errors.New("malformed event")

// DetailType is the EventBridge detail-type of CodeDeploy's deployment notifications.
const DetailType = "CodeDeploy Deployment State-change Notification"

var deploymentIDRE = regexp.MustCompile(`^d-[A-Z0-9]{9}$`)

// Parse reads the deployment notifications in a Lambda event: an SNS event whose records carry
// CodeDeploy trigger messages, or an EventBridge "CodeDeploy Deployment State-change
// Notification". Instance triggers (messages with an instanceId) carry no news about the
// replacement group and are skipped. Records that cannot be read are returned as errors (wrapping
// ErrMalformed) beside the notifications that could.
func Parse(payload []byte) ([]Notification, []error) {
	var ev struct {
		Records []struct {
			EventSource string `json:"EventSource"`
			Sns         struct {
				Message string `json:"Message"`
				Subject string `json:"Subject"`
			} `json:"Sns"`
		} `json:"Records"`
		DetailType string `json:"detail-type"`
		Source     string `json:"source"`
		Detail     struct {
			DeploymentID string `json:"deploymentId"`
			State        string `json:"state"`
		} `json:"detail"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil {
		return nil, []error{fmt.Errorf("%w: not a JSON object: %v", ErrMalformed, err)}
	}
	switch {
	case ev.DetailType != "":
		if ev.DetailType != DetailType {
			return nil, []error{fmt.Errorf("%w: EventBridge detail-type %q is not %q", ErrMalformed, ev.DetailType, DetailType)}
		}
		if !deploymentIDRE.MatchString(ev.Detail.DeploymentID) {
			return nil, []error{fmt.Errorf("%w: EventBridge event with deploymentId %q", ErrMalformed, ev.Detail.DeploymentID)}
		}
		return []Notification{{DeploymentID: ev.Detail.DeploymentID, Event: "EventBridge " + ev.Detail.State}}, nil
	case len(ev.Records) > 0:
		var ns []Notification
		var errs []error
		for i, r := range ev.Records {
			if r.EventSource != "aws:sns" {
				errs = append(errs, fmt.Errorf("%w: record %d comes from %q, not aws:sns", ErrMalformed, i, r.EventSource))
				continue
			}
			var m struct {
				DeploymentID     string  `json:"deploymentId"`
				EventTriggerName string  `json:"eventTriggerName"`
				Status           string  `json:"status"`
				InstanceID       *string `json:"instanceId"`
			}
			if err := json.Unmarshal([]byte(r.Sns.Message), &m); err != nil {
				errs = append(errs, fmt.Errorf("%w: record %d: the SNS message is not CodeDeploy's JSON (%.80q)", ErrMalformed, i, r.Sns.Message))
				continue
			}
			if m.InstanceID != nil {
				continue
			}
			if !deploymentIDRE.MatchString(m.DeploymentID) {
				errs = append(errs, fmt.Errorf("%w: record %d: the message's deploymentId is %q", ErrMalformed, i, m.DeploymentID))
				continue
			}
			ns = append(ns, Notification{DeploymentID: m.DeploymentID, Event: strings.TrimSpace(m.EventTriggerName + " " + m.Status)})
		}
		return ns, errs
	}
	return nil, []error{fmt.Errorf("%w: neither an SNS event (Records) nor an EventBridge event (detail-type)", ErrMalformed)}
}
