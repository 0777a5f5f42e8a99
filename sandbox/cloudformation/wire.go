package cloudformation

import "github.com/aviary-deploy/aviary/sandbox/protocol"

// Wire shapes of the CloudFormation query API (botocore model cloudformation/2010-05-15): JSON
// names decode the form, XML names shape the response.

type parameter struct {
	ParameterKey     string `json:"ParameterKey" xml:"ParameterKey"`
	ParameterValue   string `json:"ParameterValue" xml:"ParameterValue"`
	UsePreviousValue bool   `json:"UsePreviousValue" xml:"-"`
}

type tag struct {
	Key   string `json:"Key" xml:"Key"`
	Value string `json:"Value" xml:"Value"`
}

type createStackInput struct {
	StackName        string      `json:"StackName"`
	TemplateBody     string      `json:"TemplateBody"`
	TemplateURL      string      `json:"TemplateURL"`
	Parameters       []parameter `json:"Parameters"`
	DisableRollback  bool        `json:"DisableRollback"`
	OnFailure        string      `json:"OnFailure"`
	Capabilities     []string    `json:"Capabilities"`
	Tags             []tag       `json:"Tags"`
	TimeoutInMinutes int         `json:"TimeoutInMinutes"`
}

type updateStackInput struct {
	StackName           string      `json:"StackName"`
	TemplateBody        string      `json:"TemplateBody"`
	TemplateURL         string      `json:"TemplateURL"`
	UsePreviousTemplate bool        `json:"UsePreviousTemplate"`
	Parameters          []parameter `json:"Parameters"`
	Capabilities        []string    `json:"Capabilities"`
	Tags                []tag       `json:"Tags"`
	DisableRollback     bool        `json:"DisableRollback"`
}

type stackIDOutput struct {
	StackID string `xml:"StackId"`
}

type stackNameInput struct {
	StackName string `json:"StackName"`
	NextToken string `json:"NextToken"`
}

type deleteStackInput struct {
	StackName       string   `json:"StackName"`
	RetainResources []string `json:"RetainResources"`
}

type output struct {
	OutputKey   string `xml:"OutputKey"`
	OutputValue string `xml:"OutputValue"`
	Description string `xml:"Description,omitempty"`
}

type stackOut struct {
	StackID           string              `xml:"StackId"`
	StackName         string              `xml:"StackName"`
	Description       string              `xml:"Description,omitempty"`
	Parameters        *members[parameter] `xml:"Parameters,omitempty"`
	CreationTime      protocol.Timestamp  `xml:"CreationTime"`
	DeletionTime      *protocol.Timestamp `xml:"DeletionTime,omitempty"`
	LastUpdatedTime   *protocol.Timestamp `xml:"LastUpdatedTime,omitempty"`
	StackStatus       string              `xml:"StackStatus"`
	StackStatusReason string              `xml:"StackStatusReason,omitempty"`
	DisableRollback   bool                `xml:"DisableRollback"`
	Capabilities      *members[string]    `xml:"Capabilities,omitempty"`
	Outputs           *members[output]    `xml:"Outputs,omitempty"`
	Tags              *members[tag]       `xml:"Tags,omitempty"`
	ParentID          string              `xml:"ParentId,omitempty"`
	RootID            string              `xml:"RootId,omitempty"`
	DriftInformation  struct {
		StackDriftStatus string `xml:"StackDriftStatus"`
	} `xml:"DriftInformation"`
}

type describeStacksOutput struct {
	Stacks    []stackOut `xml:"Stacks>member"`
	NextToken string     `xml:"NextToken,omitempty"`
}

type stackEventOut struct {
	StackID              string             `xml:"StackId"`
	EventID              string             `xml:"EventId"`
	StackName            string             `xml:"StackName"`
	LogicalResourceID    string             `xml:"LogicalResourceId"`
	PhysicalResourceID   string             `xml:"PhysicalResourceId"`
	ResourceType         string             `xml:"ResourceType"`
	Timestamp            protocol.Timestamp `xml:"Timestamp"`
	ResourceStatus       string             `xml:"ResourceStatus"`
	ResourceStatusReason string             `xml:"ResourceStatusReason,omitempty"`
	ResourceProperties   string             `xml:"ResourceProperties,omitempty"`
	ClientRequestToken   string             `xml:"ClientRequestToken,omitempty"`
}

type describeStackEventsOutput struct {
	StackEvents []stackEventOut `xml:"StackEvents>member"`
	NextToken   string          `xml:"NextToken,omitempty"`
}

type describeStackResourcesInput struct {
	StackName          string `json:"StackName"`
	LogicalResourceID  string `json:"LogicalResourceId"`
	PhysicalResourceID string `json:"PhysicalResourceId"`
}

type stackResourceOut struct {
	StackName            string             `xml:"StackName"`
	StackID              string             `xml:"StackId"`
	LogicalResourceID    string             `xml:"LogicalResourceId"`
	PhysicalResourceID   string             `xml:"PhysicalResourceId,omitempty"`
	ResourceType         string             `xml:"ResourceType"`
	Timestamp            protocol.Timestamp `xml:"Timestamp"`
	ResourceStatus       string             `xml:"ResourceStatus"`
	ResourceStatusReason string             `xml:"ResourceStatusReason,omitempty"`
	DriftInformation     struct {
		StackResourceDriftStatus string `xml:"StackResourceDriftStatus"`
	} `xml:"DriftInformation"`
}

type describeStackResourcesOutput struct {
	StackResources []stackResourceOut `xml:"StackResources>member"`
}

type getTemplateInput struct {
	StackName     string `json:"StackName"`
	ChangeSetName string `json:"ChangeSetName"`
	TemplateStage string `json:"TemplateStage"`
}

type getTemplateOutput struct {
	TemplateBody    string   `xml:"TemplateBody"`
	StagesAvailable []string `xml:"StagesAvailable>member"`
}

type continueUpdateRollbackInput struct {
	StackName       string   `json:"StackName"`
	ResourcesToSkip []string `json:"ResourcesToSkip"`
}

// members is a query-protocol list that is left out when empty, as AWS leaves it out
// (encoding/xml writes the parent of an empty "A>member,omitempty" list).
type members[T any] struct {
	Member []T `xml:"member"`
}

func listOf[T any](items []T) *members[T] {
	if len(items) == 0 {
		return nil
	}
	return &members[T]{Member: items}
}
